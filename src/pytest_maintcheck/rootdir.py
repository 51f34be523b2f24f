"""``--maintcheck-report-dir DIR`` (with a space) must not move pytest's rootdir.

pytest finds its rootdir and ini file before it loads plugins, so it does not know our options
yet and takes an existing DIR for a test path: the rootdir moves to a common ancestor, the
project's ini file (testpaths, addopts) is lost and maintcheck.yaml is looked for in the wrong
folder. Once the plugin is loaded (pytest_load_initial_conftests) the options are known:
the rootdir is found again without their values and, when it differs, put right together with
what pytest read from the ini file until then. The ``=`` spelling never needs this.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import pytest

PATH_OPTIONS = ("--maintcheck-config", "--maintcheck-report-dir")


def repair(config: pytest.Config, args: list[str]) -> None:
    """Redo pytest's rootdir/ini discovery when one of our path options moved it."""
    if not any(arg in PATH_OPTIONS for arg in args):
        return  # the common case costs one scan of the arguments
    from _pytest.config.findpaths import determine_setup

    parser: Any = config._parser
    namespace = parser.parse_known_args(args, namespace=copy.copy(config.option))
    wanted = {
        "inifile": namespace.inifilename,
        "override_ini": namespace.override_ini,
        "args": namespace.file_or_dir,
        "rootdir_cmd_arg": namespace.rootdir or None,
        "invocation_dir": config.invocation_params.dir,
    }
    accepted = inspect.signature(determine_setup).parameters
    found = determine_setup(**{k: v for k, v in wanted.items() if k in accepted})
    rootpath, inipath, inicfg = found[0], found[1], found[2]
    if rootpath == config.rootpath and inipath == config.inipath:
        return
    _adopt(config, args, rootpath, inipath, inicfg)


def _adopt(config: Any, args: list[str], rootpath: Any, inipath: Any, inicfg: Any) -> None:
    """What pytest's Config.parse did with the ini file, done again with the right one."""
    old_cut = str(config.inipath.parent if config.inipath else config.rootpath)
    config._rootpath = rootpath
    config._inipath = inipath
    if hasattr(config, "_inicfg"):
        config._inicfg = inicfg  # pytest 9
    else:
        config.inicfg = inicfg  # pytest 8
    config._inicache.clear()
    config._parser.extra_info["rootdir"] = str(rootpath)
    config._parser.extra_info["inifile"] = str(inipath)
    addopts = list(config.getini("addopts"))
    args[:0] = addopts
    config.pluginmanager.consider_preparse(addopts, exclude_only=False)
    namespace = config.known_args_namespace
    config.known_args_namespace = config._parser.parse_known_args(
        args, namespace=copy.copy(config.option)
    )
    if namespace.confcutdir in (None, old_cut):  # pytest derived it from the wrong ini
        config.known_args_namespace.confcutdir = str(inipath.parent if inipath else rootpath)
    else:
        config.known_args_namespace.confcutdir = namespace.confcutdir
    configure_path = getattr(config, "_configure_python_path", None)
    if configure_path is not None:
        configure_path()  # the right ini file's pythonpath
