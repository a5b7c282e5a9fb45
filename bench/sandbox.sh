#!/usr/bin/env bash
# Sandbox throughput and memory benchmark (prints figures; not a test).
# Usage: bench/sandbox.sh [--tickets N] [--replies N] [--concurrency N] [--max-secs S]
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench sandbox -- "$@"
