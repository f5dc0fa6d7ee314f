import assert from "node:assert/strict";
import { test } from "node:test";
import { parseCidr, Reason } from "@loraforge/crds";
import { ConfigError, configFromEnv } from "../../src/config.ts";
import { sourceNetworkProblem } from "../../src/sourceNetworks.ts";
import { validateForCluster } from "../../src/validate.ts";
import { lft } from "../support/fixtures.ts";

/** A parsed run whose dataset is at `uri` (set after parsing: admission would refuse some). */
function withDataset(uri: string) {
  const l = lft();
  l.spec.dataset.source = { uri };
  return l;
}

test("a source on a private address is refused, naming the field, the URL and the range", () => {
  const l = withDataset("https://10.1.2.3/alpaca.json");
  const v = validateForCluster(l);
  assert.equal(v.ok, false);
  assert.equal(v.reason, Reason.InvalidSpec);
  assert.match(
    v.message,
    /^spec\.dataset\.source\.uri https:\/\/10\.1\.2\.3\/alpaca\.json: 10\.1\.2\.3 is in 10\.0\.0\.0\/8 \(private, RFC 1918\).*policy\.allowedSourceNetworks/,
  );
});

test("every non-public kind is refused by default; public addresses and names pass", () => {
  for (const host of [
    "192.168.1.10",
    "172.31.255.1",
    "100.64.0.1",
    "198.18.0.7",
    "127.0.0.1", // refused at admission too; the operator still says no to an old object
    "169.254.169.254",
    "[fd12:3456::1]",
    "[fec0::1]",
    "[2001:db8::1]",
    "[64:ff9b::a9fe:a9fe]",
  ]) {
    assert.ok(
      sourceNetworkProblem(withDataset(`https://${host}/d.json`), []),
      `${host} should be refused`,
    );
  }
  for (const host of ["93.184.216.34", "[2606:4700::1111]", "data.example.com", "minio"]) {
    assert.equal(sourceNetworkProblem(withDataset(`https://${host}/d.json`), []), undefined, host);
  }
  // Other schemes have no network host in them.
  assert.equal(sourceNetworkProblem(withDataset("s3://10.0.0.1/d.json"), []), undefined);
});

test("an allowed network lets its addresses through, and only them", () => {
  const allowed = [parseCidr("198.18.0.0/15"), parseCidr("fd00:10::/32")];
  assert.equal(
    sourceNetworkProblem(withDataset("https://198.19.0.5:9000/d.json"), allowed),
    undefined,
  );
  assert.equal(
    sourceNetworkProblem(withDataset("https://[fd00:10::5]/d.json"), allowed),
    undefined,
  );
  assert.match(
    sourceNetworkProblem(withDataset("https://10.0.0.5/d.json"), allowed) ?? "",
    /the operator allows only 198\.18\.0\.0\/15, fd00:10::\/32/,
  );
  // The output and a git repository are checked as well.
  const out = lft({
    dataset: {
      source: { git: { repo: "https://192.168.0.2/r.git", ref: "main", path: "d.json" } },
    },
  });
  assert.match(sourceNetworkProblem(out, allowed) ?? "", /^spec\.dataset\.source\.git\.repo /);
});

test("policy.allowedSourceNetworks reaches the operator as CIDRs; a bad one is named", () => {
  const env = { LORAFORGE_TRAINER_IMAGE: "t:1" };
  assert.deepEqual(configFromEnv(env, "me").allowedSourceNetworks, []);
  const c = configFromEnv(
    { ...env, LORAFORGE_ALLOWED_SOURCE_NETWORKS: "198.18.0.0/15, fd00::/8" },
    "me",
  );
  assert.deepEqual(
    c.allowedSourceNetworks.map((n) => `${n.text}`),
    ["198.18.0.0/15", "fd00::/8"],
  );
  assert.throws(
    () =>
      configFromEnv({ ...env, LORAFORGE_ALLOWED_SOURCE_NETWORKS: "10.0.0.0/8,10.0.0.0/33" }, "me"),
    (e: unknown) =>
      e instanceof ConfigError &&
      /LORAFORGE_ALLOWED_SOURCE_NETWORKS: "10\.0\.0\.0\/33": the prefix length must be at most 32/.test(
        e.message,
      ),
  );
  assert.throws(
    () => configFromEnv({ ...env, LORAFORGE_ALLOWED_SOURCE_NETWORKS: "intranet" }, "me"),
    /"intranet" is not a CIDR/,
  );
});
