import assert from "node:assert/strict";
import { judge } from "./token_review.ts";

const allowed = ["system:serviceaccount:earthworm:earthworm"];

Deno.test("a review verdict accepts only Earthworm's ServiceAccount with the right audience", () => {
  assert.deepEqual(
    judge(
      {
        authenticated: true,
        user: { username: allowed[0]! },
        audiences: ["earthworm"],
      },
      "earthworm",
      allowed,
    ),
    { ok: true, user: allowed[0] },
  );
  const other = judge(
    {
      authenticated: true,
      user: { username: "system:serviceaccount:default:default" },
    },
    "earthworm",
    allowed,
  );
  assert.equal(other.ok, false);
  assert.equal(!other.ok && other.status, 403);
  const wrongAudience = judge(
    {
      authenticated: true,
      user: { username: allowed[0]! },
      audiences: ["https://kubernetes.default.svc"],
    },
    "earthworm",
    allowed,
  );
  assert.equal(!wrongAudience.ok && wrongAudience.status, 401);
  const rejected = judge(
    { authenticated: false, error: "token expired" },
    "earthworm",
    allowed,
  );
  assert.match(!rejected.ok ? rejected.error : "", /token expired/);
});
