"""Repository root: the maintenance suite lives in checks/, the plugin's own tests in tests/.

The plugin itself is loaded through its pytest11 entry point (``pip install -e .``), so running
``pytest -m daily`` here uses exactly what an installed copy would.
"""

collect_ignore = ["bench", "examples", "src"]
