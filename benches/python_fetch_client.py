"""A plain Python client of the users-summary API, the baseline for `cpstat fetch`.

Usage: python_fetch_client.py BASE_URL ACCOUNT OUT.parquet [--threads N] [--page-size N]

Reads the first page to learn `count`, then every page of `take`/`skip`,
sequentially or with a thread pool of N threads (one requests session per
thread). Each user becomes one row of the snapshot columns, written with
pyarrow. It does none of what cpstat adds (retries, duplicate and
count checks, type repair): it is the cheapest honest client. The token is
read from CPSTAT_TOKEN.
"""

import argparse
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq
import requests

COUNTERS = {
    "enrolled_courses": "enrolledCourses", "not_completed_courses": "notCompletedCourses",
    "overdue_courses": "overdueCourses", "enrolled_materials": "enrolledMaterials",
    "not_completed_materials": "notCompletedMaterials", "phishing_campaigns": "phishingCampaigns",
    "emails_sent": "emailsSent", "links_clicked": "linksClicked", "data_submitted": "dataSubmitted",
}


def as_int(value):
    """Return a counter as int; the API also sends 3.0 and "3"."""
    if value is None:
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def as_float(value):
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def flatten(entry):
    user = entry.get("user") or {}
    meta = user.get("meta") or {}
    branch = user.get("branch") or {}
    groups = user.get("groups")
    row = {
        "user_id": str(user.get("id")),
        "email": user.get("email"),
        "name": user.get("name"),
        "first_name": user.get("firstName"),
        "last_name": user.get("lastName"),
        "user_created": user.get("created"),
        "company_name": meta.get("companyName"),
        "manager": meta.get("manager"),
        "manager_email": meta.get("managerEmail"),
        "department": meta.get("department"),
        "country": meta.get("country"),
        "branch_id": None if branch.get("id") is None else str(branch.get("id")),
        "branch_name": branch.get("name"),
        "groups": None if groups is None else [
            {"id": str(g.get("id")), "name": g.get("name")} for g in groups
        ],
        "last_action": None if entry.get("lastAction") is None else str(entry.get("lastAction")),
        "average_score": as_float(entry.get("averageScore")),
    }
    for column, key in COUNTERS.items():
        row[column] = as_int(entry.get(key))
    return row


class Client:
    def __init__(self, base, account, token, page_size):
        self.url = f"{base.rstrip('/')}/accounts/{account}/reports/users-summary"
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self.page_size = page_size
        self.local = threading.local()
        self.bytes = 0

    def page(self, skip):
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        response = session.get(self.url, params={"take": self.page_size, "skip": skip},
                               headers=self.headers, timeout=60)
        response.raise_for_status()
        self.bytes += len(response.content)
        return json.loads(response.content)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("account")
    parser.add_argument("out")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    client = Client(args.base_url, args.account, os.environ["CPSTAT_TOKEN"], args.page_size)
    first = client.page(0)
    pages = [first["result"]]
    skips = range(len(first["result"]), int(first["count"]), args.page_size)
    if args.threads == 1:
        pages.extend(client.page(skip)["result"] for skip in skips)
    else:
        with ThreadPoolExecutor(args.threads) as pool:
            pages.extend(page["result"] for page in pool.map(client.page, skips))
    rows = [flatten(entry) for page in pages for entry in page]
    pq.write_table(pa.Table.from_pylist(rows), args.out, compression="zstd")
    print(f"users={len(rows)} pages={len(pages)} json_bytes={client.bytes}")


if __name__ == "__main__":
    main()
