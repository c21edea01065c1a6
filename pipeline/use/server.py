"""HTTP service of a certified ensemble (docs/using.md#http), on Starlette served by uvicorn.

- ``GET /health``: ``{"status": "ok", ...}`` with what the ensemble is (Ensemble.describe()).
- ``POST /classify``: one image, either as the request body (any image format Pillow reads, an npz with one
  image in ``x``, or IDX) or as a multipart form field ``file``; answers the JSON object ``classify`` prints.
- ``POST /classify/batch``: any number of images (several ``file`` fields, or an npz/IDX file holding several);
  answers ``{"results": [...]}``, one object per image, in order.

Bad input is a 400 with ``{"error": "..."}``; a body over ``max_bytes`` a 413, one without a Content-Length a 411.
Requests are classified one at a time (the ensemble uses every core for each).
"""

import threading

from ..errors import PipelineError
from .ensemble import Ensemble, result_records

MAX_BYTES = 16 * 2**20  # default largest request body
MAX_FILES = 1024  # form fields of one batch request


def make_app(ensemble: Ensemble, max_bytes: int = MAX_BYTES):
    """The Starlette application serving ``ensemble``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    lock = threading.Lock()
    health = {"status": "ok", **ensemble.describe()}

    def error(status: int, message: str):
        return JSONResponse({"error": message}, status_code=status)

    async def uploads(request):
        """[(name, bytes)] of the request: its form's ``file`` fields, or its body; or an error response."""
        length = request.headers.get("content-length")
        if length is None:
            return error(411, "send a Content-Length header (the body's size in bytes)")
        if not length.isdigit() or int(length) > max_bytes:
            return error(413, f"request body of {length} bytes; at most {max_bytes} are accepted (serve --max-bytes)")
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            async with request.form(max_files=MAX_FILES, max_fields=MAX_FILES) as form:
                files = [(f.filename or "file", await f.read()) for f in form.getlist("file") if hasattr(f, "read")]
            if not files:
                return error(400, "a multipart request needs its images in fields named file")
            return files
        body = await request.body()
        if not body:
            return error(400, "empty request: send an image as the body, or as a multipart field named file")
        return [(request.query_params.get("name", "body"), body)]

    def classify(files):
        with lock:
            tables = [ensemble.classify_bytes(data, name) for name, data in files]
        return [r for t in tables for r in result_records(t)]

    async def run(request, single: bool):
        files = await uploads(request)
        if not isinstance(files, list):
            return files
        try:
            results = await run_in_threadpool(classify, files)
        except PipelineError as err:
            return error(400, str(err))
        if single:
            if len(results) != 1:
                return error(400, f"{len(results)} images in the request; POST /classify takes one, "
                                  "/classify/batch several")
            return JSONResponse(results[0])
        return JSONResponse({"results": results})

    async def classify_one(request):
        return await run(request, single=True)

    async def classify_batch(request):
        return await run(request, single=False)

    async def health_check(request):
        return JSONResponse(health)

    return Starlette(routes=[Route("/health", health_check, methods=["GET"]),
                             Route("/classify", classify_one, methods=["POST"]),
                             Route("/classify/batch", classify_batch, methods=["POST"])])


def serve(ensemble: Ensemble, host: str = "127.0.0.1", port: int = 8000, max_bytes: int = MAX_BYTES, log=print):
    """Serve ``ensemble`` until interrupted. ``port`` 0 picks a free port; the address is logged once listening."""
    import socket

    import uvicorn

    try:
        sock = socket.create_server((host, port))
    except OSError as err:
        raise PipelineError(f"cannot listen on {host}:{port} ({err.strerror}); choose another --port or --host") \
            from None
    bound = sock.getsockname()
    config = uvicorn.Config(make_app(ensemble, max_bytes), log_level="warning", access_log=False)
    log(f"serving {ensemble.run} ({ensemble.n_models} models, {', '.join(ensemble.methods)}) on "
        f"http://{bound[0]}:{bound[1]} (GET /health, POST /classify, POST /classify/batch)")
    uvicorn.Server(config).run(sockets=[sock])
