"""Stand-in for the get-pip.py that ansible-test downloads to bootstrap its sanity venvs.

ansible-test creates one virtual environment per sanity test (~/.ansible/test/venv/...) without
pip, then runs ~/.ansible/test/cache/get_pip_<version>.py, which it downloads from
ci-files.testing.ansible.com on first use. That host is not reachable here (only PyPI is), and
ansible-test's own error message says to save the script at that path by hand. hack/check copies
this file there instead: it installs the interpreter's bundled pip with ensurepip, then installs
exactly what ansible-test asked for (its pinned pip, from PyPI) with that pip.

Invoked by ansible-test as: python get_pip_<version>.py [pip options] pip==<version> [--no-setuptools] [--no-wheel]
"""

import subprocess
import sys


def main() -> int:
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    python = sys.executable
    try:
        subprocess.run([python, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
    except subprocess.CalledProcessError:
        print(f"get-pip stand-in (meshfleet hack/ansible-test-get-pip.py): {python} has no ensurepip", file=sys.stderr)
        return 1
    return subprocess.run([python, "-m", "pip", "install", "--quiet", *args], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
