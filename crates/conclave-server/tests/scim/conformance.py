"""Runs scim2-tester, an independent SCIM 2.0 conformance checker, against a
Conclave server: discovery, then creating, reading, querying, replacing,
patching and deleting every resource type the server describes, with values
the checker makes up.

    python3 conformance.py BASE_URL TOKEN

Prints one line per check and a JSON summary last; exits 1 when any check
found an error (a MUST broken) and 0 otherwise. Deviations from SHOULDs
are printed, not failed.
"""

import json
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


def main() -> int:
    base, token = sys.argv[1], sys.argv[2]
    http = Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    results = check_server(SyncSCIMClient(http))
    counts = {}
    for result in results:
        counts[result.status.name] = counts.get(result.status.name, 0) + 1
        where = f"[{result.resource_type}] " if result.resource_type else ""
        print(f"{result.status.name:<10} {where}{result.title}: {result.reason or ''}")
    errors = [r for r in results if r.status == Status.ERROR]
    print(json.dumps({"checks": len(results), "by_status": counts, "errors": len(errors)}))
    return 1 if errors or not results else 0


if __name__ == "__main__":
    sys.exit(main())
