"""Servers started in their own processes for tests and benches: the app, a Milvus standalone server.
Not part of the app, and not owned by the command line."""
