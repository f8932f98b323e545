import pytest

PLUGIN = "evalsuite.testing.pytest_plugin"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if not item.config.pluginmanager.has_plugin(PLUGIN):
        pytest.fail(
            f"the evalsuite pytest plugin is not registered: its pytest11 entry point is missing from the "
            f"installed metadata. Reinstall the package (pip install -e .) or run pytest with -p {PLUGIN}",
            pytrace=False,
        )
