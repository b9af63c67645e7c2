"""Built-in example graphs, each an ordinary LangGraph module.

Every module here is registered by one line in ``orchestrator.registry.catalog.BUILTIN_GRAPHS``;
its docstring is the description shown on the Graphs page and a module-level
``EXAMPLE_INPUT`` prefills the start form.
"""
