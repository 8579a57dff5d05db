#!/usr/bin/env sh
# Print the newest Python >= 3.12 on this machine, else python3 (Chalice deploys the runtime it runs under).
for v in 3.14 3.13 3.12; do
  if command -v "python$v" >/dev/null 2>&1 && "python$v" -c 'import sys' >/dev/null 2>&1; then
    command -v "python$v"; exit 0
  fi
  for p in "$HOME"/.pyenv/versions/"$v"*/bin/python"$v" /usr/local/bin/python"$v" /usr/bin/python"$v"; do
    if [ -x "$p" ] && "$p" -c 'import sys' >/dev/null 2>&1; then echo "$p"; exit 0; fi
  done
done
command -v python3
