# rdeploy's bridge to ansible-core (src/modules/bridge.rs starts it as `python3 -c HELPER`).
# One JSON request a line on stdin, one JSON answer a line on stdout:
#   {"op": "version"}                    -> {"version": "2.19.0"}
#   {"op": "resolve", "names": [NAME]}   -> {"modules": {NAME: null | {"fqcn", "path", "action",
#                                             "options": [{"name", "aliases", "required"}] | null,
#                                             "facts": [KEY of ansible_facts it returns]}}}
#   {"op": "build", "fqcn", "path"}      -> {"payload": TEXT, "marker": TEXT}
# A failure is {"error": TEXT}. Nothing here touches a host: `build` packs the module with its
# module_utils exactly as ansible-playbook does (module_common.modify_module), with a marker
# in place of the arguments, which rdeploy replaces for each host.
import json
import sys

MARKER_ARGS = {"__rdeploy_arguments__": 1}


def answer(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    import ansible
    from ansible.plugins.loader import action_loader, fragment_loader, init_plugin_loader, module_loader
    from ansible.utils.plugin_docs import get_docstring

    init_plugin_loader()
    for line in sys.stdin:
        try:
            req = json.loads(line)
            op = req.get("op")
            if op == "version":
                answer({"version": ansible.__version__, "python": sys.executable})
            elif op == "resolve":
                out = {}
                for name in req["names"]:
                    try:
                        ctx = module_loader.find_plugin_with_context(name)
                    except Exception:
                        ctx = None
                    if ctx is None or not ctx.resolved or not str(ctx.plugin_resolved_path).endswith(".py"):
                        out[name] = None
                        continue
                    act = action_loader.find_plugin_with_context(ctx.resolved_fqcn)
                    options, facts = None, []
                    try:
                        collection = ".".join(ctx.resolved_fqcn.split(".")[:2])
                        doc, _, ret, _ = get_docstring(ctx.plugin_resolved_path, fragment_loader, collection_name=collection)
                        if doc and isinstance(doc.get("options"), dict):
                            options = [
                                {"name": k, "aliases": list(v.get("aliases") or []), "required": bool(v.get("required"))}
                                for k, v in doc["options"].items() if isinstance(v, dict)
                            ]
                        contains = ((ret or {}).get("ansible_facts") or {}).get("contains") or {}
                        facts = list(contains.keys()) if isinstance(contains, dict) else []
                    except Exception:
                        options = None
                    out[name] = {
                        "fqcn": ctx.resolved_fqcn,
                        "path": ctx.plugin_resolved_path,
                        "action": act.resolved_fqcn if act.resolved else None,
                        "options": options,
                        "facts": facts,
                    }
                answer({"modules": out})
            elif op == "build":
                from ansible.executor.module_common import modify_module
                from ansible.parsing.dataloader import DataLoader
                from ansible.template import Templar

                built = modify_module(
                    module_name=req["fqcn"],
                    module_path=req["path"],
                    module_args=MARKER_ARGS,
                    templar=Templar(loader=DataLoader()),
                    task_vars={"ansible_python_interpreter": "/usr/bin/python3"},
                    module_compression="ZIP_DEFLATED",
                )
                marker = "params=" + repr(json.dumps({"ANSIBLE_MODULE_ARGS": MARKER_ARGS})) + ","
                text = built.b_module_data.decode("utf-8")
                if built.module_style != "new" or marker not in text:
                    answer({"error": "%s is not a Python module ansible-core packs (style %s)" % (req["fqcn"], built.module_style)})
                else:
                    answer({"payload": text, "marker": marker})
            else:
                answer({"error": "unknown request %r" % (op,)})
        except Exception as e:  # the helper never dies on one bad request
            answer({"error": "%s: %s" % (type(e).__name__, e)})


main()
