#!/usr/bin/env bash
# `make demo`: build (or reuse) a Debian cloud-init guest image, apply examples/demo.yaml, wait until
# cloud-init is done, then show the guest's status and a line cloud-init wrote inside it.
set -euo pipefail
cd "$(dirname "$0")/.."
VMCTL=.venv/bin/vmctl
PY=.venv/bin/python
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "guest image (built from the Debian archive the first time: a few minutes; then cached)"
$PY -m tests.tooling.images link debian examples/images > /dev/null

step "vmctl plan examples/demo.yaml"
$VMCTL plan examples/demo.yaml

step "vmctl apply --yes --wait examples/demo.yaml"
$VMCTL apply --yes --wait examples/demo.yaml

step "vmctl status examples/demo.yaml"
$VMCTL status examples/demo.yaml

step "inside the guest, through its agent: cat /var/lib/vmctl-demo/hello.txt"
$PY -m tests.tooling.agent demo cat /var/lib/vmctl-demo/hello.txt

step "done"
echo "A second 'make demo' changes nothing. Remove the guest with: make clean-demo"
echo "                         (that is: $VMCTL destroy --yes -f examples/demo.yaml)"
