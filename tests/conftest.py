"""The plugin's own tests: pytester for plugin behaviour, the sandbox's real servers for probes."""

pytest_plugins = ["pytester", "sandbox_fixtures", "physical_fixtures"]
