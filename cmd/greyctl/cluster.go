package main

import (
	"github.com/spf13/cobra"
)

func newClusterCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show the Raft cluster and its nodes",
		RunE:  groupRun,
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the answering server's view of the cluster",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			ci, err := c.Cluster(cmd.Context())
			if err != nil {
				return failure(err)
			}
			return a.printCluster(ci)
		},
	}
	nodes := &cobra.Command{
		Use:   "nodes",
		Short: "List the servers and workers of the cluster",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client(a.tenant)
			if err != nil {
				return err
			}
			ns, err := c.Nodes(cmd.Context())
			if err != nil {
				return failure(err)
			}
			return a.printNodes(ns)
		},
	}
	cmd.AddCommand(status, nodes)
	return cmd
}
