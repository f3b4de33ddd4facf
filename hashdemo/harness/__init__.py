"""Servers started in their own processes for tests and benches (the app, a Milvus standalone server)
and the timing routine they share: not part of the app, not owned by the command line."""
