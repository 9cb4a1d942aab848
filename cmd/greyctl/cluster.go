package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/grey-distributed/grey/client"
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
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			ci, err := c.Cluster(ctx)
			if err != nil {
				return failure(err)
			}
			return a.printCluster(ci)
		}),
	}
	nodes := &cobra.Command{
		Use:   "nodes",
		Short: "List the servers and workers of the cluster",
		Args:  noArgs,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			ns, err := c.Nodes(ctx)
			if err != nil {
				return failure(err)
			}
			return a.printNodes(ns)
		}),
	}
	leader := &cobra.Command{
		Use:   "leader",
		Short: "Print the leader's node id",
		Args:  noArgs,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			ci, err := c.Cluster(ctx)
			if err != nil {
				return failure(err)
			}
			if ci.LeaderID == "" {
				return failure(errors.New("no leader (election in progress?)"))
			}
			if a.json() {
				return writeJSON(a.stdout, map[string]string{"leader_id": ci.LeaderID, "leader_addr": ci.LeaderAddr})
			}
			fmt.Fprintln(a.stdout, ci.LeaderID)
			return nil
		}),
	}
	var join client.JoinRequest
	joinCmd := &cobra.Command{
		Use:   "join --node-id ID --raft-addr HOST:PORT --api-addr URL",
		Short: "Admit a server as a Raft voter (greyd --join does this itself)",
		Args:  noArgs,
		RunE: a.withClient(func(ctx context.Context, c *client.Client, _ []string) error {
			resp, err := c.Join(ctx, &join)
			if err != nil {
				return failure(err)
			}
			if a.json() {
				return writeJSON(a.stdout, resp)
			}
			fmt.Fprintf(a.stdout, "%s joined cluster %s (leader %s)\n", join.NodeID, resp.ClusterID, resp.LeaderID)
			return nil
		}),
	}
	joinCmd.Flags().StringVar(&join.NodeID, "node-id", "", "the joining node's id")
	joinCmd.Flags().StringVar(&join.RaftAddr, "raft-addr", "", "its Raft address host:port")
	joinCmd.Flags().StringVar(&join.APIAddr, "api-addr", "", "its API base URL")
	joinCmd.Flags().StringVar(&join.Role, "role", "server", "server or worker")
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a server from the Raft configuration (or a worker's registration)",
		Args:  exactArgs(1),
		RunE: a.withClient(func(ctx context.Context, c *client.Client, args []string) error {
			if err := c.RemoveNode(ctx, args[0]); err != nil {
				return failure(err)
			}
			fmt.Fprintf(a.stdout, "removed %s\n", args[0])
			return nil
		}),
	}
	cmd.AddCommand(status, nodes, leader, joinCmd, remove)
	return cmd
}
