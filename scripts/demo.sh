#!/usr/bin/env bash
# The quick-start demo: run examples/pod.yaml (replacing a previous run), show the namespaces and
# cgroups nspod made, and the page the sidecar fetches from the app over localhost.
set -euo pipefail
cd "$(dirname "$0")/.."
nspod() { node dist/bin/nspod.js "$@"; }

echo "\$ nspod play --replace examples/pod.yaml"
nspod play --replace examples/pod.yaml
echo
echo "\$ nspod inspect pod foo"
nspod inspect pod foo
echo
echo "\$ nspod exec foo -c sidecar -- wget -qO- http://localhost:80/"
# httpd may need a moment to bind its port after the container started.
for _ in $(seq 1 50); do
  if page=$(nspod exec foo -c sidecar -- wget -qO- http://localhost:80/ 2>/dev/null); then
    printf '%s\n' "$page"
    ip=$(nspod pods -o json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const p=JSON.parse(s).find(x=>x.name==="foo");process.stdout.write(p&&p.ip?p.ip:"")})')
    if [ -n "$ip" ]; then
      echo
      echo "\$ busybox wget -qO- http://$ip/    # from the host, over the pod network's bridge"
      busybox wget -qO- "http://$ip/"
    fi
    echo
    echo "The pod keeps running: try 'nspod pods', 'nspod logs foo -c app', 'nspod rm -f foo'."
    exit 0
  fi
  sleep 0.1
done
echo "the sidecar could not fetch the app's page" >&2
exit 1
