"""A Grey worker for `resize`: greyctl task submit --kind resize --payload '{"url":"s3://b/cat.png","width":320}'."""

import os

from grey_client import Client, Job, Worker

client = Client(os.environ.get("GREY_SERVER", "http://127.0.0.1:8080"), tenant=os.environ.get("GREY_TENANT"))
worker = Worker(client, concurrency=8, key_file=os.environ.get("GREY_WORKER_KEY", "resize-worker.key"))


@worker.task("resize")  # the same task as examples/resizeworker (Go)
def resize(job: Job) -> dict[str, object]:
    return {"url": job.payload["url"], "width": job.payload["width"], "resized": True}


worker.run()  # until SIGTERM / Ctrl-C: stops leasing, finishes running tasks, exits
