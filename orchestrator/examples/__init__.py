"""Built-in example graphs, each an ordinary LangGraph module.

Every module here is registered by one line in ``orchestrator.registry.catalog.BUILTIN_GRAPHS``;
its docstring is the description shown on the Graphs page and a module-level
``EXAMPLE_INPUT`` prefills the start form. ``offline_model`` is no graph: it is the
scripted chat model ``deep_research`` and ``finops`` run on when no provider is configured.
"""
