#!/bin/sh
# scripts/demo.sh — placeholder; the local-cluster demo is not written yet.
echo "scripts/demo.sh: the demo is not written yet" >&2
exit 1
