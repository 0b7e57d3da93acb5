#!/usr/bin/env python3
"""The interpreter of every module process during one profiled run (benchmarks/rerun_profile.py
sets it as ansible_python_interpreter): runs the module with the real Python
($MESHFLEET_MODULE_PYTHON), then appends the module's name and the CPU-seconds of that process
and of everything it waited for (helm) to $MESHFLEET_MODULE_CPU_LOG, one JSON line each."""

import json
import os
import re
import resource
import subprocess
import sys


def module_name(argv):
    for arg in argv:
        found = re.search(r"AnsiballZ_(\w+)\.py", arg)
        if found:
            return found.group(1)
    return " ".join(argv)[:60]


def main():
    argv = sys.argv[1:]
    code = subprocess.call([os.environ["MESHFLEET_MODULE_PYTHON"]] + argv)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(os.environ["MESHFLEET_MODULE_CPU_LOG"], "a") as log:
        log.write(json.dumps({"module": module_name(argv),
                              "cpu": round(usage.ru_utime + usage.ru_stime, 3)}) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
