"""Drives the oras Python SDK (PyPI `oras`) against a registry.

push:  python oras_artifact.py push <host:port> <repo> <model file> <artifact type> <subject digest> <subject size>
       Pushes the model file as a layer of an artifact manifest with the given
       artifactType whose subject is the given image manifest; prints the
       manifest digest. oras-py's push() has no artifactType option, so the
       manifest is built and uploaded through the SDK's own blob and manifest
       calls. (The SDK's Subject.from_manifest re-serialises JSON and so gets
       the digest wrong; the caller passes the real one.)
pull:  python oras_artifact.py pull <host:port> <repo>@<digest> <out dir>
       Pulls the artifact with oras-py's pull(); prints the files written.
"""
import hashlib
import json
import os
import sys

import oras.client
import oras.defaults
import oras.oci


def client(host):
    """An oras client signed in with WARD_USERNAME / WARD_PASSWORD (token flow)."""
    c = oras.client.OrasClient(hostname=host, insecure=True)
    c.auth.set_basic_auth(os.environ["WARD_USERNAME"], os.environ["WARD_PASSWORD"])
    return c


def push(host, repo, model, artifact_type, subject_digest, subject_size):
    remote = client(host)

    container = remote.get_container(f"{host}/{repo}:model")
    layer = oras.oci.NewLayer(model, media_type="application/vnd.example.model.weights")
    layer["annotations"] = {oras.defaults.annotation_title: os.path.basename(model)}
    remote.upload_blob(model, container, layer).raise_for_status()

    conf, config_file = oras.oci.ManifestConfig()
    empty = os.path.join(os.path.dirname(os.path.abspath(model)), "empty-config.json")
    with open(empty, "w") as f:
        f.write("{}")
    conf["mediaType"] = "application/vnd.oci.empty.v1+json"
    conf["digest"] = "sha256:" + hashlib.sha256(b"{}").hexdigest()
    conf["size"] = 2
    remote.upload_blob(empty, container, conf).raise_for_status()

    manifest = oras.oci.NewManifest()
    manifest["artifactType"] = artifact_type
    manifest["config"] = conf
    manifest["layers"] = [layer]
    manifest["subject"] = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": subject_digest,
        "size": int(subject_size),
    }
    response = remote.upload_manifest(manifest, container)
    response.raise_for_status()
    print(response.headers.get("Docker-Content-Digest"))
    print(response.headers.get("OCI-Subject", ""))


def pull(host, ref, out_dir):
    files = client(host).pull(target=f"{host}/{ref}", outdir=out_dir)
    print(json.dumps(sorted(os.path.basename(f) for f in files)))


if __name__ == "__main__":
    if sys.argv[1] == "push":
        push(*sys.argv[2:8])
    elif sys.argv[1] == "pull":
        pull(*sys.argv[2:5])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
