"""Development tooling, apart from the Dagster code location and the ML core: ``make run``'s live
run, the demos, the README's pictures, examples and generated tables, the local API as a demo
subprocess and the browser helper (the only code importing Playwright, a dev-only dependency).

Nothing in the code location, the core, the jobs or the API imports it, and it is left out of
the built package (``pyproject.toml``), so no image carries it
(``recsys_assets_tests/project/test_architecture.py``)."""
