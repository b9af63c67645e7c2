"""The REST API under ``/api/v1/``.

One ``APIView`` per operation, ``<Noun><Verb>Api``, with its ``InputSerializer`` /
``OutputSerializer`` nested; each calls the same services and selectors as the
pages, so roles are enforced in one place.

- ``plumbing``: what every endpoint shares (the one error shape, pagination, query
  filters, request bodies, schema naming); DRF's settings name its handler and schema class;
- ``graphs``, ``executions``, ``budgets``: the core's resources, one module each;
- ``urls``: every endpoint's URL, the schema and the docs. It is the one module here
  that imports the feature apps' APIs (``approvals/api.py``, ``traces/api.py``), as
  the root URLconf includes their pages: URL plumbing, not resource logic.

Nothing is imported here, so DRF can load ``plumbing`` without the resources.
"""
