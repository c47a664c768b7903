"""``walrus-harness serve``: a results browser over the run store, as Jepsen's ``serve``.

An index of runs and campaigns coloured by verdict, sortable and filterable; a page per run with
each checker's verdict, each anomaly's witness window (the operations that prove it, with the
faults active over them), the plots, the timeline, the node logs and the run as a zip; a page
per campaign with its heat map linking to the runs.

The web stack is the standard library's ``http.server`` (a ``ThreadingHTTPServer``): the store
is a tree of files read-only, every page is rendered from a run's small files (test.json,
results.json) in milliseconds, and nothing needs to run concurrently with a request but another
request. An async framework (trio's would be quart-trio on hypercorn) would add two
dependencies and a build of nothing in return; the pages carry their own CSS and script and
fetch nothing, so they work without a network.
"""
