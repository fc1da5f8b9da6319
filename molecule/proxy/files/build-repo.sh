#!/bin/sh
# Builds the lab repo served over HTTP from /srv/www: a trusted flat apt repository with one tiny package,
# a git repository for dumb HTTP, a PEP 503 simple index with one tiny wheel, an npm registry answering the
# package metadata request (GET /npm/NAME) with one tiny tarball, and an intranet page for Firefox.
# Offline: nothing is fetched.
set -eu
www=/srv/www
rm -rf "$www" /tmp/netreach-build
mkdir -p "$www/apt" "$www/simple/netreach-hello" "$www/packages" /tmp/netreach-build
echo "netreach lab repo" > "$www/index.html"
printf '<!DOCTYPE html>\n<html><head><title>netreach intranet</title></head><body><h1>netreach intranet page</h1></body></html>\n' > "$www/intranet.html"

# apt: a .deb built with dpkg-deb, a Packages index and a Release file (the client trusts the repo).
pkg=/tmp/netreach-build/pkg
mkdir -p "$pkg/DEBIAN" "$pkg/usr/share/netreach-hello"
printf 'Package: netreach-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: netreach lab <lab@example.invalid>\nDescription: netreach lab package\n' > "$pkg/DEBIAN/control"
echo "hello from the inside repo" > "$pkg/usr/share/netreach-hello/hello"
dpkg-deb --build --root-owner-group "$pkg" "$www/apt/netreach-hello_1.0_all.deb" >/dev/null
cd "$www/apt"
deb=netreach-hello_1.0_all.deb
{ dpkg-deb -f "$deb"; echo "Filename: ./$deb"; echo "Size: $(stat -c %s "$deb")"; echo "SHA256: $(sha256sum "$deb" | cut -d' ' -f1)"; echo; } > Packages
{ echo "Origin: netreach-lab"; echo "Label: netreach-lab"; echo "Suite: lab"; echo "Codename: lab"; echo "Date: $(date -Ru)";
  echo "SHA256:"; echo " $(sha256sum Packages | cut -d' ' -f1) $(stat -c %s Packages) Packages"; } > Release

# git over dumb HTTP.
src=/tmp/netreach-build/src
git init -q "$src"
echo "netreach lab git repository" > "$src/README"
git -C "$src" add README
git -C "$src" -c user.name=lab -c user.email=lab@example.invalid commit -qm "lab repository"
git clone -q --bare "$src" "$www/x.git"
git -C "$www/x.git" update-server-info

# pip: a wheel assembled by hand (no build tools) and a simple index pointing at it with its hash.
python3 - "$www" <<'PY'
import base64, hashlib, sys, zipfile
www = sys.argv[1]
name, version = "netreach_hello", "1.0"
files = {
    f"{name}/__init__.py": b"GREETING = 'hello from the inside index'\n",
    f"{name}-{version}.dist-info/METADATA": b"Metadata-Version: 2.1\nName: netreach-hello\nVersion: 1.0\n",
    f"{name}-{version}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: netreach-lab\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = [f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
          for path, data in files.items()]
files[f"{name}-{version}.dist-info/RECORD"] = ("\n".join(record + [f"{name}-{version}.dist-info/RECORD,,"]) + "\n").encode()
wheel = f"{name}-{version}-py3-none-any.whl"
with zipfile.ZipFile(f"{www}/packages/{wheel}", "w") as archive:
    for path, data in files.items():
        archive.writestr(path, data)
digest = hashlib.sha256(open(f"{www}/packages/{wheel}", "rb").read()).hexdigest()
open(f"{www}/simple/index.html", "w").write('<html><body><a href="netreach-hello/">netreach-hello</a></body></html>\n')
open(f"{www}/simple/netreach-hello/index.html", "w").write(
    f'<html><body><a href="../../packages/{wheel}#sha256={digest}">{wheel}</a></body></html>\n')
PY
# npm: a registry document (the "abbreviated metadata" npm asks for) and the tarball it names, with its hashes.
mkdir -p "$www/npm" /tmp/netreach-build/npm/package
cat > /tmp/netreach-build/npm/package/package.json <<'JSON'
{"name": "netreach-hello", "version": "1.0.0", "description": "netreach lab package", "main": "index.js", "license": "MIT"}
JSON
echo "module.exports = 'hello from the inside registry';" > /tmp/netreach-build/npm/package/index.js
tar -C /tmp/netreach-build/npm -czf "$www/npm/netreach-hello-1.0.0.tgz" --owner=0 --group=0 package
python3 - "$www" <<'PY'
import base64, hashlib, json, sys
www = sys.argv[1]
data = open(f"{www}/npm/netreach-hello-1.0.0.tgz", "rb").read()
version = {"name": "netreach-hello", "version": "1.0.0", "main": "index.js", "license": "MIT",
           "dist": {"tarball": "http://proxy-repo/npm/netreach-hello-1.0.0.tgz", "shasum": hashlib.sha1(data).hexdigest(),
                    "integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()}}
document = {"name": "netreach-hello", "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": version},
            "modified": "2026-01-01T00:00:00.000Z"}
open(f"{www}/npm/netreach-hello", "w").write(json.dumps(document) + "\n")
PY
rm -rf /tmp/netreach-build
touch "$www/.built"
