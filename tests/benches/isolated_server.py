"""The environment of a server under a memory bench: its own state directory, projects root and logs."""
import os, tempfile


def isolated_env(prefix, mode, **extra):
    """A fresh root directory and the environment of a server whose state lives in it, in execution `mode`.

    PLUGIN_CACHE in the caller's environment shares one compiled-plugin cache between runs; `extra` adds or
    overrides variables. Works for this server and for the seed, which read the same variables.
    """
    root = tempfile.mkdtemp(prefix=prefix)
    os.makedirs(root + "/projects")
    os.makedirs(root + "/state")
    env = dict(os.environ, HOME=root, CODEX_HOME=root + "/codex-home", CODEX_PROJECTS_ROOT=root + "/projects",
               CODEX_ALLOWED_ROOTS=root + "/projects", CODEX_MCP_STATE_DB=root + "/state/state.sqlite3",
               CODEX_CONTROL_PLANE_MCP_LOG=root + "/server.log",
               CODEX_CONTROL_PLANE_MCP_PLUGIN_CACHE=os.environ.get("PLUGIN_CACHE", root + "/plugin-cache"),
               CODEX_MCP_EXECUTION_MODE=mode)
    env.update(extra)
    return root, env
