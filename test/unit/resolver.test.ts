// The resolver kind's pure parts: the owned-file format (mark, original kept byte for byte),
// resolv.conf and hosts bodies and their parsing, the find+tail read split back into files,
// dns/search validation; and the files tool's helper on a real temporary directory.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { filesCommand } from "../../src/exec/files-tool.js";
import { ProcessRunner } from "../../src/exec/process-runner.js";
import type { FileOp } from "../../src/exec/files-tool.js";
import { splitTailV } from "../../reconcilers/resolver/files.js";
import { canonicalIp, domainProblem, networkResolver } from "../../reconcilers/resolver/intent.js";
import { ownedText, ownerOf, parseOwned } from "../../reconcilers/resolver/owned-file.js";
import { hostsEntries, resolvBody, resolvFields } from "../../reconcilers/resolver/render.js";
import type { SourcePos } from "../../src/core/diagnostics.js";

describe("owned files", () => {
  const originals = ["", "nameserver 1.1.1.1", "a\n\n b\r\n", "ünïcode ☃ no newline", "x".repeat(500) + "\n"];
  it.each(originals)("keeps the file that was there byte for byte (%#)", (before) => {
    const text = ownedText("bolt-t-x", ["nameserver 10.0.0.53"], { exists: true, text: before });
    expect(ownerOf(text)).toEqual({ target: "bolt-t-x" });
    expect(parseOwned(text)).toEqual({ body: ["nameserver 10.0.0.53"], original: { exists: true, text: before } });
    // Every line a comment resolv.conf and nss_files skip, none longer than 100 characters.
    for (const l of text
      .split("\n")
      .slice(1, -1)
      .filter((l) => !l.startsWith("nameserver"))) {
      expect(l.startsWith("#")).toBe(true);
      expect(l.length).toBeLessThan(101);
    }
  });

  it("a file bolt created has no original; the host target and foreign files are told apart", () => {
    expect(parseOwned(ownedText(null, ["x"], { exists: false, text: "" }))).toEqual({ body: ["x"], original: { exists: false, text: "" } });
    expect(ownerOf(ownedText(null, [], { exists: false, text: "" }))).toEqual({ target: null });
    expect(ownerOf("nameserver 1.1.1.1\n")).toBeUndefined();
    expect(ownerOf("# managed by someone else\n")).toBeUndefined();
  });
});

describe("bodies", () => {
  it("resolv.conf lines and what they parse back to", () => {
    const body = resolvBody(["10.0.0.53", "fd00::53"], ["corp.example", "example"]);
    expect(body).toEqual(["nameserver 10.0.0.53", "nameserver fd00::53", "search corp.example example"]);
    expect(resolvFields(body)).toEqual({ nameservers: "10.0.0.53, fd00::53", search: "corp.example, example" });
    expect(resolvFields(["nameserver 1.1.1.1", "options ndots:2"])).toEqual({ nameservers: "1.1.1.1", search: "" });
  });

  it("hosts lines are counted without localhost and comments", () => {
    expect(hostsEntries(["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "# x", "10.0.0.2\tweb", "fd00::2\tweb", ""])).toBe(2);
  });
});

describe("the one read", () => {
  it("splits tail -v output exactly: no final newline, empty files, blank lines", () => {
    const out = "==> /etc/netns/a/hosts <==\nx\ny\n==> /etc/netns/a/resolv.conf <==\n\n==> /etc/netns/b/hosts <==\nz\n\n\n\n==> /etc/netns/c/hosts <==\nlast";
    expect([...splitTailV(out)]).toEqual([
      ["/etc/netns/a/hosts", "x\ny"],
      ["/etc/netns/a/resolv.conf", ""],
      ["/etc/netns/b/hosts", "z\n\n\n"],
      ["/etc/netns/c/hosts", "last"],
    ]);
    expect(splitTailV("").size).toBe(0);
  });
});

describe("dns and search validation", () => {
  const errs: string[] = [];
  const err = (m: string, at: SourcePos) => errs.push(`${at.line}: ${m}`);
  const at = (...k: (string | number)[]) => ({ file: "f.toml", line: k.length, col: 1 }) as SourcePos;
  const src = { file: "f.toml", line: 1, col: 1 } as SourcePos;

  it("canonical addresses, v4 and v6; anything else refused", () => {
    expect(canonicalIp("10.0.0.53")).toBe("10.0.0.53");
    expect(canonicalIp("FD00:0::53")).toBe("fd00::53");
    for (const bad of ["dns.google", "10.0.0.256", "10.0.0.0/24", "fe80::1%eth0", ""]) expect(canonicalIp(bad), bad).toBeUndefined();
  });

  it("domain names", () => {
    for (const ok of ["corp.example", "a", "_srv.example.", "x-1.example"]) expect(domainProblem(ok), ok).toBeUndefined();
    expect(domainProblem("corp..example")).toMatch(/empty label/);
    expect(domainProblem("-x.example")).toMatch(/not start or end/);
    expect(domainProblem("a b")).toMatch(/letters, digits/);
    expect(domainProblem(`${"a".repeat(64)}.example`)).toMatch(/63/);
  });

  it("a network's dns, search and discovery, with errors where they are", () => {
    errs.length = 0;
    expect(networkResolver("db", { dns: ["10.0.0.53", "10.0.0.53"], search: ["Corp.Example"] }, at, src, err)).toMatchObject({
      dns: ["10.0.0.53"],
      search: ["corp.example"],
      discovery: true,
    });
    expect(networkResolver("db", { discovery: false }, at, src, err)).toMatchObject({ dns: [], discovery: false });
    expect(errs).toEqual([]);
    expect(networkResolver("db", { dns: ["1.1.1.1", "nope"] }, at, src, err)).toBeUndefined();
    expect(networkResolver("db", { dns: ["1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"] }, at, src, err)).toBeUndefined();
    expect(networkResolver("db", { search: ["corp.example"] }, at, src, err)).toBeUndefined();
    expect(errs).toEqual([
      '2: network "db": dns "nope" is not an IPv4 or IPv6 address',
      '2: network "db": dns lists 4 nameservers; glibc reads at most 3',
      '1: network "db": search is set but dns is not',
    ]);
  });
});

// The same ops as a node process (any runner) and in process (the real runner skips the node start).
describe.each([
  ["as its own process", false],
  ["in process (ProcessRunner)", true],
])("the files tool's helper %s", (_how, inProcess) => {
  const runHelper = async (ops: FileOp[], force = false) => {
    const { argv, stdin } = filesCommand(ops, force);
    if (inProcess) {
      const r = await new ProcessRunner().run(argv, stdin);
      return { code: r.code, stderr: r.stderr };
    }
    try {
      execFileSync(argv[0]!, argv.slice(1), { input: stdin, stdio: ["pipe", "pipe", "pipe"] });
      return { code: 0, stderr: "" };
    } catch (e) {
      const x = e as { status: number; stderr: Buffer };
      return { code: x.status, stderr: String(x.stderr) };
    }
  };

  it("writes in order (directories made), in place, and removes a directory it leaves empty", async () => {
    const root = mkdtempSync(join(tmpdir(), "bolt-files-"));
    const a = join(root, "ns1", "hosts");
    const b = join(root, "ns1", "resolv.conf");
    const wrote = await runHelper([
      { verb: "write", path: a, text: "one\n" },
      { verb: "write", path: b, text: "two" },
    ]);
    expect(wrote.code).toBe(0);
    expect([readFileSync(a, "utf8"), readFileSync(b, "utf8")]).toEqual(["one\n", "two"]);
    expect((await runHelper([{ verb: "remove", path: a }])).code).toBe(0);
    expect(existsSync(join(root, "ns1"))).toBe(true);
    const twice = await runHelper([
      { verb: "remove", path: b },
      { verb: "remove", path: b },
    ]);
    expect(twice.code).toBe(0);
    expect(existsSync(join(root, "ns1"))).toBe(false);
  });

  it("stops at the first failing op and names it like ip -batch; forced it goes on", async () => {
    const root = mkdtempSync(join(tmpdir(), "bolt-files-"));
    const file = join(root, "plain");
    writeFileSync(file, "");
    const ok = join(root, "d", "ok");
    const ops: FileOp[] = [
      { verb: "write", path: join(file, "under-a-file"), text: "x" },
      { verb: "write", path: ok, text: "y" },
    ];
    const r = await runHelper(ops);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Command failed -:1/);
    expect(existsSync(ok)).toBe(false);
    expect((await runHelper(ops, true)).code).toBe(1);
    expect(readFileSync(ok, "utf8")).toBe("y");
  });
});
