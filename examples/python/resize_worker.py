"""A Grey worker for `resize` tasks: greyctl task submit --kind resize --payload '{"width":640,"height":480}'."""
import os

from grey_client import Client, Job, Worker

client = Client(os.environ.get("GREY_SERVER", "http://127.0.0.1:8080"), tenant=os.environ.get("GREY_TENANT"))
worker = Worker(client, key_file=os.environ.get("GREY_WORKER_KEY", "resize-worker.key"))  # signs proofs


@worker.task("resize")
def resize(job: Job) -> dict[str, int]:
    return {"width": job.payload["width"] // 2, "height": job.payload["height"] // 2}


worker.run()  # until SIGTERM / Ctrl-C: finishes running tasks, then exits
