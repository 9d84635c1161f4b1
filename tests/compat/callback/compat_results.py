# A stdout callback for tests/compat.rs (ours, not fetched): one JSON line per task result, in
# the shape of rdeploy's `--output json` "result" events, and the recap, so that the suite can
# compare ansible-playbook's per-task results with rdeploy's. ansible-core ships no JSON
# callback of its own (ansible.posix.json is in a collection).
import json

from ansible.playbook.handler import Handler
from ansible.playbook.task_include import TaskInclude
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
    name: compat_results
    type: stdout
    short_description: one JSON line per task result (rdeploy's compatibility suite)
    description: Prints the task, host and status of every task result as JSON lines.
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'stdout'
    CALLBACK_NAME = 'compat_results'

    def _emit(self, result, status):
        task = result.task
        res = result.result
        msg = res.get("msg", "") if status in ("failed", "unreachable") else ""
        print(json.dumps({
            "event": "result",
            "task": task.get_name(),
            "include": isinstance(task, TaskInclude),
            "handler": isinstance(task, Handler),
            "result": {
                "host": result.host.get_name(),
                "status": status,
                "ignored": status == "failed" and bool(task.ignore_errors),
                "msg": str(msg)[:300],
            },
        }), flush=True)

    def v2_runner_on_ok(self, result):
        self._emit(result, "changed" if result.result.get("changed", False) else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._emit(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._emit(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._emit(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        hosts = {h: stats.summarize(h) for h in sorted(stats.processed.keys())}
        print(json.dumps({"event": "recap", "hosts": hosts}), flush=True)
