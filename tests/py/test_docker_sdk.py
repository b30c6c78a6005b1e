#!/usr/bin/env python3
"""docker-py (the PyPI `docker` package) against berthd.

Run by the end-to-end test tests/e2e/docker_py.rs, which starts berthd,
prepares the images and sets:

  DOCKER_HOST                  unix:///.../berth.sock
  BERTH_TEST_REGISTRY_IMAGE    REGISTRY/REPO:TAG pushed to a loopback
                               registry and absent from berthd (optional)
  BERTH_TEST_NATIVE            1 when busybox:latest is there and native
                               containers can run (root)

Images it expects: hello:latest, wsleep:latest (samples hello.wasm and
sleep.wasm). Plain unittest, no pytest: python3 tests/py/test_docker_sdk.py
"""

import os
import sys
import unittest
import uuid

import docker
import docker.errors

NATIVE = os.environ.get("BERTH_TEST_NATIVE") == "1"
REGISTRY_IMAGE = os.environ.get("BERTH_TEST_REGISTRY_IMAGE", "")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class DockerSdk(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.client = docker.from_env(timeout=60)

    @classmethod
    def tearDownClass(cls):
        for c in cls.client.containers.list(all=True):
            c.remove(force=True)
        cls.client.close()

    def test_ping_and_version(self):
        self.assertTrue(self.client.ping())
        v = self.client.version()
        self.assertIn("ApiVersion", v)
        self.assertEqual(v["Os"], "linux")

    def test_run_attached_returns_the_output(self):
        out = self.client.containers.run("hello", ["a", "b"], remove=True)
        self.assertEqual(
            out, b"Hello from Wasm!\nargv[0]=hello.wasm\nargv[1]=a\nargv[2]=b\ncwd=/\n"
        )
        out = self.client.containers.run(
            "hello", environment={"GREETING": "py"}, remove=True
        )
        self.assertIn(b"\nGREETING=py\n", out)
        # stderr only, and a failure with its exit code and stderr.
        out = self.client.containers.run(
            "hello", ["--stderr", "to-err"], stdout=False, stderr=True, remove=True
        )
        self.assertEqual(out, b"to-err\n")
        with self.assertRaises(docker.errors.ContainerError) as cm:
            self.client.containers.run("hello", ["--stderr", "bad", "--exit", "3"])
        self.assertEqual(cm.exception.exit_status, 3)
        self.assertEqual(cm.exception.stderr, b"bad\n")
        cm.exception.container.remove()
        if NATIVE:
            out = self.client.containers.run(
                "busybox", ["sh", "-c", "echo native; echo $X"],
                environment=["X=1"], remove=True,
            )
            self.assertEqual(out, b"native\n1\n")

    def test_run_detached_list_get_and_remove(self):
        name = unique("py-sleep")
        c = self.client.containers.run(
            "wsleep", ["100"], detach=True, name=name, labels={"suite": "py"}
        )
        self.assertEqual(len(c.id), 64)
        c.reload()
        self.assertEqual(c.status, "running")
        self.assertEqual(c.name, name)
        self.assertEqual(c.labels, {"suite": "py"})
        self.assertIn(c.id, [x.id for x in self.client.containers.list()])
        self.assertEqual(
            [x.name for x in self.client.containers.list(filters={"name": name})], [name]
        )
        self.assertEqual(
            [x.name for x in self.client.containers.list(filters={"label": "suite=py"})],
            [name],
        )
        done = self.client.containers.create("hello", name=unique("py-created"))
        self.assertNotIn(done.id, [x.id for x in self.client.containers.list()])
        self.assertIn(done.id, [x.id for x in self.client.containers.list(all=True)])
        done.remove()

        got = self.client.containers.get(name)
        self.assertEqual(got.id, c.id)
        self.assertEqual(got.attrs["Config"]["Image"], "wsleep")
        with self.assertRaises(docker.errors.APIError) as cm:
            got.remove()
        self.assertEqual(cm.exception.status_code, 409)
        got.stop(timeout=5)
        self.assertEqual(got.wait()["StatusCode"], 143)
        self.client.containers.get(name).remove()
        with self.assertRaises(docker.errors.NotFound):
            self.client.containers.get(name)

    def test_logs_stream_follows_until_exit(self):
        c = self.client.containers.run("wsleep", ["0.5"], detach=True)
        chunks = list(c.logs(stream=True, follow=True))
        self.assertEqual(b"".join(chunks), b"sleeping 0.5\n")
        self.assertEqual(c.wait()["StatusCode"], 0)
        c.reload()
        self.assertEqual(c.status, "exited")
        self.assertEqual(c.logs(), b"sleeping 0.5\n")
        self.assertEqual(c.logs(tail=1), b"sleeping 0.5\n")
        stamped = c.logs(timestamps=True).decode()
        self.assertRegex(stamped, r"^\d{4}-\d\d-\d\dT[0-9:.]+Z sleeping 0\.5\n$")
        c.remove()
        if NATIVE:
            c = self.client.containers.run(
                "busybox", ["sh", "-c", "echo one; sleep 0.3; echo two >&2; echo three"],
                detach=True,
            )
            self.assertEqual(
                b"".join(c.logs(stream=True, follow=True)), b"one\ntwo\nthree\n"
            )
            self.assertEqual(c.logs(stderr=False), b"one\nthree\n")
            c.remove()

    @unittest.skipUnless(NATIVE, "exec needs a native container (root)")
    def test_exec_run(self):
        c = self.client.containers.run(
            "busybox", ["sleep", "1000"], detach=True, init=True, name=unique("py-exec")
        )
        r = c.exec_run(["sh", "-c", "echo hi; exit 3"])
        self.assertEqual(r.exit_code, 3)
        self.assertEqual(r.output, b"hi\n")
        r = c.exec_run("cat /etc/hostname")
        self.assertEqual(r.exit_code, 0)
        self.assertEqual(r.output.decode().strip(), c.id[:12])
        r = c.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
        self.assertEqual(r.output, (b"out\n", b"err\n"))
        r = c.exec_run(["sh", "-c", "echo $A; pwd"], environment={"A": "b"}, workdir="/tmp")
        self.assertEqual(r.output, b"b\n/tmp\n")
        r = c.exec_run(["sh", "-c", "echo a; echo b"], stream=True)
        self.assertEqual(b"".join(r.output), b"a\nb\n")
        r = c.exec_run(["tty"], tty=True)
        self.assertTrue(r.output.startswith(b"/dev/pts/"), r.output)
        c.remove(force=True)

    @unittest.skipUnless(NATIVE, "exec needs a native container (root)")
    def test_short_execs_never_lose_their_output(self):
        # exec_run reads the 101 head through http.client's buffered reader
        # and the output from the raw socket: output that came along with
        # the head was lost. Four threads at once, as a loaded host would.
        import concurrent.futures

        c = self.client.containers.run("busybox", ["sleep", "1000"], detach=True, init=True)

        def run(i):
            r = c.exec_run(["echo", f"short-{i}"])
            return i, r.exit_code, r.output

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(run, range(200)))
        bad = [(i, out) for i, code, out in results if (code, out) != (0, f"short-{i}\n".encode())]
        self.assertEqual(bad, [], f"{len(bad)} of 200 execs lost their output")
        c.remove(force=True)

    def test_attach_replays_the_logs_without_a_stream(self):
        c = self.client.containers.run("hello", ["--stderr", "e"], detach=True)
        self.assertEqual(c.wait()["StatusCode"], 0)
        want = b"Hello from Wasm!\nargv[0]=hello.wasm\nargv[1]=--stderr\nargv[2]=e\ncwd=/\n"
        for i in range(50):
            out = c.attach(stdout=True, stderr=False, logs=True, stream=False)
            self.assertEqual(out, want, f"attempt {i}")
        self.assertEqual(c.attach(stdout=False, stderr=True, logs=True), b"e\n")
        c.remove()

    def test_kill_then_inspect_and_remove_at_once(self):
        kinds = [("wsleep", [])]
        if NATIVE:
            kinds.append(("busybox", ["sleep", "1000"]))
        for image, cmd in kinds:
            for i in range(15):
                c = self.client.containers.run(image, cmd, detach=True, init=image == "busybox")
                c.kill()
                c.reload()
                self.assertEqual(c.status, "exited", f"{image} attempt {i}: {c.attrs['State']}")
                self.assertEqual(c.attrs["State"]["ExitCode"], 137)
                c.remove()

    @unittest.skipUnless(REGISTRY_IMAGE, "no loopback registry")
    def test_images_pull_from_a_registry(self):
        repo, tag = REGISTRY_IMAGE.rsplit(":", 1)
        with self.assertRaises(docker.errors.ImageNotFound):
            self.client.images.get(REGISTRY_IMAGE)
        img = self.client.images.pull(repo, tag=tag)
        self.assertIn(REGISTRY_IMAGE, img.tags)
        self.assertTrue(img.id.startswith("sha256:"))
        self.assertEqual(self.client.images.get(REGISTRY_IMAGE).id, img.id)
        out = self.client.containers.run(REGISTRY_IMAGE, remove=True)
        self.assertTrue(out.startswith(b"Hello from Wasm!\n"), out)
        with self.assertRaises(docker.errors.APIError):
            self.client.images.pull(repo, tag="no-such-tag")

    def test_images_list_get_tag_and_remove(self):
        tags = [t for i in self.client.images.list() for t in i.tags]
        self.assertIn("hello:latest", tags)
        self.assertIn("wsleep:latest", tags)
        hello = self.client.images.get("hello")
        self.assertEqual(hello.attrs["Architecture"], "wasm")
        self.assertEqual(
            [i.id for i in self.client.images.list(name="hello")], [hello.id]
        )
        self.assertTrue(hello.tag("py-tagged", "v1"))
        self.assertIn("py-tagged:v1", self.client.images.get("hello").tags)
        self.client.images.remove("py-tagged:v1")
        self.assertNotIn("py-tagged:v1", self.client.images.get("hello").tags)
        with self.assertRaises(docker.errors.ImageNotFound):
            self.client.images.get("py-tagged:v1")


if __name__ == "__main__":
    result = unittest.main(verbosity=2, exit=False).result
    sys.exit(0 if result.wasSuccessful() else 1)
