"""The Dagster webserver's GraphQL API, the public way to launch and follow an asset backfill.

Dagster's Python client has no backfill method and its Python backfill classes are internal,
so this speaks the same ``launchPartitionBackfill`` mutation the UI sends. The backfill is
then the daemon's: it appears under Runs → Backfills, and the queue, pools and run retries
apply to its runs as to any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

DEFAULT_URL = "http://127.0.0.1:3000"

_LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PartitionKeysNotFoundError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on UnauthorizedError { message }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}
"""

_DAEMON = """
query Daemon {
  instance { daemonHealth { daemonStatus(daemonType: "BACKFILL") {
    required healthy lastHeartbeatTime
  } } }
}
"""

_STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      id status numPartitions
      assetBackfillData { assetBackfillStatuses {
        ... on AssetPartitionsStatusCounts {
          assetKey { path }
          numPartitionsTargeted numPartitionsInProgress numPartitionsMaterialized
          numPartitionsFailed
        }
      } }
    }
    ... on BackfillNotFoundError { message }
    ... on PythonError { message }
  }
}
"""

FINISHED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


class WebserverError(Exception):
    """The webserver could not be reached or refused the request; the message says why."""


@dataclass(frozen=True)
class AssetProgress:
    asset: str
    targeted: int
    in_progress: int
    materialized: int
    failed: int


@dataclass(frozen=True)
class BackfillStatus:
    id: str
    status: str
    assets: list[AssetProgress]

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def targeted(self) -> int:
        return sum(a.targeted for a in self.assets)

    @property
    def done(self) -> int:
        return sum(a.materialized + a.failed for a in self.assets)

    @property
    def failed(self) -> int:
        return sum(a.failed for a in self.assets)


@dataclass(frozen=True)
class Webserver:
    url: str = DEFAULT_URL
    timeout: float = 60.0

    def _query(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        endpoint = f"{self.url.rstrip('/')}/graphql"
        try:
            response = requests.post(
                endpoint, json={"query": query, "variables": variables or {}}, timeout=self.timeout
            )
        except requests.ConnectionError as exc:
            raise WebserverError(
                f"no Dagster webserver answers at {self.url}: start the site with `make dev` "
                "(webserver and daemon), or give --url"
            ) from exc
        except requests.Timeout as exc:
            raise WebserverError(f"{endpoint} did not answer in {self.timeout:.0f} s") from exc
        if response.status_code != 200:
            raise WebserverError(f"{endpoint} answered HTTP {response.status_code}")
        body = response.json()
        if body.get("errors"):
            raise WebserverError(f"{endpoint}: {body['errors'][0].get('message')}")
        return body["data"]

    def launch(
        self,
        assets: list[list[str]],
        partitions: list[str],
        *,
        tags: Mapping[str, str],
        title: str,
        description: str,
        run_config: Mapping[str, Any] | None,
    ) -> str:
        """Launch one asset backfill; returns its id."""
        params: dict[str, Any] = {
            "assetSelection": [{"path": path} for path in assets],
            "partitionNames": partitions,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
            "title": title,
            "description": description,
        }
        if run_config:
            params["runConfigData"] = dict(run_config)
        result = self._query(_LAUNCH, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] == "LaunchBackfillSuccess":
            return result["backfillId"]
        if "errors" in result:
            reasons = "; ".join(e["message"] for e in result["errors"])
            raise WebserverError(f"run config refused: {reasons}")
        raise WebserverError(f"backfill refused ({result['__typename']}): {result.get('message')}")

    def backfill_daemon_heartbeat(self) -> float | None:
        """When the backfill daemon last said it was alive, or None if it never did."""
        status = self._query(_DAEMON)["instance"]["daemonHealth"]["daemonStatus"]
        return status["lastHeartbeatTime"]

    def status(self, backfill_id: str) -> BackfillStatus:
        result = self._query(_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if result["__typename"] != "PartitionBackfill":
            raise WebserverError(f"backfill {backfill_id}: {result.get('message')}")
        counts = (result.get("assetBackfillData") or {}).get("assetBackfillStatuses") or []
        return BackfillStatus(
            id=result["id"],
            status=result["status"],
            assets=[
                AssetProgress(
                    asset="/".join(c["assetKey"]["path"]),
                    targeted=c["numPartitionsTargeted"],
                    in_progress=c["numPartitionsInProgress"],
                    materialized=c["numPartitionsMaterialized"],
                    failed=c["numPartitionsFailed"],
                )
                for c in counts
                if "assetKey" in c
            ],
        )
