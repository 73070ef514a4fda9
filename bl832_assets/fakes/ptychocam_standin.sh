#!/usr/bin/env bash
# A stand-in for upstream's ptychocam_reconstruction.sh at NERSC, with its command line:
#   ptychocam_standin.sh -i N [-r PERIOD] [-T PERIOD] [-M] CXI
# ptychocam appends its reconstruction to CXI as the next entry_1/image_<n>; so does this, with
# bl832's local engine, so tests run a 7.0.1.2 GPU job's commands without a GPU or ptychocam.
# -r, -T and -M are accepted and ignored. $BL832_PYTHON is an interpreter with bl832_assets
# installed (default python3).
set -euo pipefail

usage() {
  echo "usage: $0 -i N [-r PERIOD] [-T PERIOD] [-M] CXI" >&2
  exit 2
}

iterations=""
while getopts "i:r:T:M" option; do
  case "$option" in
    i) iterations="$OPTARG" ;;
    r | T | M) ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[[ -n "$iterations" && $# -eq 1 ]] || usage

exec "${BL832_PYTHON:-python3}" -m bl832_assets ptycho --in-place --iterations "$iterations" "$1"
