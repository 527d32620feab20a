"""JSON Schemas of the ``vehicle.*`` methods (arguments and results), as the gateway reads them."""

from __future__ import annotations

from vehicle_host.plugins.contract import NO_ARGS as NO_ARGS
from vehicle_host.plugins.contract import object_schema as obj

ECU = {"type": "string", "minLength": 1, "maxLength": 32, "pattern": "^[A-Za-z0-9_-]+$"}
PID = {
    "anyOf": [
        {"type": "integer", "minimum": 0, "maximum": 255},
        {"type": "string", "minLength": 1, "maxLength": 24},
    ]
}
PIDS = {"type": "array", "items": PID, "minItems": 1, "maxItems": 16}
DTC_CODE = {"type": "string", "pattern": "^[PCBUpcbu][0-3][0-9A-Fa-f]{3}(-[0-9A-Fa-f]{2})?$"}

PID_VALUE = obj(
    {
        "pid": {"type": "integer"},
        "key": {"type": "string"},
        "name": {"type": "string"},
        "value": {"type": ["number", "string", "null"]},
        "unit": {"type": "string"},
        "raw": {"type": "string"},
        "supported": {"type": "array", "items": {"type": "integer"}},
    },
    ("pid",),
    strict=False,
)
DTC_ENTRY = obj(
    {
        "ecu": {"type": "string"},
        "code": {"type": "string"},
        "dtc": {"type": "string"},
        "failureType": {"type": "integer"},
        "id": {"type": "integer"},
        "description": {"type": "string"},
        "status": {"type": "integer"},
        "statusBits": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "snapshots": {"type": "array"},
        "snapshotError": {"type": "string"},
    },
    ("code", "description"),
    strict=False,
)
ERRORS = {"type": "object", "additionalProperties": {"type": "string"}}

SCAN_RESULT = obj(
    {
        "ecus": {
            "type": "array",
            "items": obj(
                {
                    "name": {"type": "string"},
                    "tx": {"type": "string"},
                    "rx": {"type": "string"},
                    "present": {"type": "boolean"},
                    "uds": {"type": "boolean"},
                    "obd": {"type": "boolean"},
                },
                ("name", "present", "uds", "obd"),
                strict=False,
            ),
        }
    },
    ("ecus",),
)
READ_VIN_ARGS = obj({"ecu": ECU, "source": {"enum": ["auto", "uds", "obd"]}})
READ_VIN_RESULT = obj(
    {
        "vin": {"type": "string", "minLength": 17, "maxLength": 17},
        "ecu": {"type": "string"},
        "source": {"type": "string"},
    },
    ("vin", "ecu", "source"),
)
READ_DIDS_ARGS = obj(
    {
        "ecu": ECU,
        "dids": {
            "type": "array",
            "minItems": 1,
            "maxItems": 32,
            "items": {
                "anyOf": [
                    {"type": "integer", "minimum": 0, "maximum": 0xFFFF},
                    {"type": "string", "maxLength": 48},
                ]
            },
        },
    },
    ("dids",),
)
READ_DIDS_RESULT = obj({"ecu": {"type": "string"}, "dids": {"type": "object"}}, ("ecu", "dids"))
READ_DTCS_ARGS = obj(
    {
        "ecu": ECU,
        "statusMask": {"type": "integer", "minimum": 0, "maximum": 255},
        "withSnapshots": {"type": "boolean"},
    }
)
READ_DTCS_RESULT = obj({"dtcs": {"type": "array", "items": DTC_ENTRY}, "errors": ERRORS}, ("dtcs", "errors"))
FREEZE_ARGS = obj(
    {"ecu": ECU, "dtc": DTC_CODE, "pids": PIDS, "frame": {"type": "integer", "minimum": 0, "maximum": 255}}
)
FREEZE_RESULT = obj(
    {
        "ecu": {"type": "string"},
        "source": {"enum": ["uds", "obd"]},
        "dtc": {"type": ["string", "null"]},
        "records": {"type": "array"},
        "frame": {"type": "integer"},
        "values": {"type": "object", "additionalProperties": PID_VALUE},
    },
    ("ecu", "source"),
)
CLEAR_ARGS = obj({"ecu": ECU, "group": {"type": "integer", "minimum": 0, "maximum": 0xFFFFFF}})
CLEAR_RESULT = obj(
    {"cleared": {"type": "array", "items": {"type": "string"}}, "errors": ERRORS}, ("cleared", "errors")
)
READ_PIDS_ARGS = obj({"ecu": ECU, "pids": PIDS}, ("pids",))
READ_PIDS_RESULT = obj(
    {"ecu": {"type": "string"}, "values": {"type": "object", "additionalProperties": PID_VALUE}},
    ("ecu", "values"),
)
WATCH_PIDS_ARGS = obj(
    {"ecu": ECU, "pids": PIDS, "rateHz": {"type": "number", "exclusiveMinimum": 0, "maximum": 10}}, ("pids",)
)
WATCH_PIDS_EVENT = obj(
    {
        "ecu": {"type": "string"},
        "values": {"type": "object", "additionalProperties": PID_VALUE},
        "error": {"type": "string"},
        "t": {"type": "number"},
    },
    ("ecu", "t"),
)
STATE_RESULT = obj(
    {
        "speed_kmh": {"type": ["number", "null"]},
        "gear": {"type": ["string", "null"]},
        "ignition": {"type": ["string", "null"]},
        "parked": {"type": "boolean"},
        "stale": {"type": "boolean"},
        "updated": {"type": ["number", "null"]},
    },
    ("speed_kmh", "gear", "ignition", "parked", "stale", "updated"),
)
ADAPTER_RESULT = obj(
    {
        "present": {"type": "boolean"},
        "interface": {"type": "string"},
        "channel": {"type": "string"},
        "error": {"type": ["string", "null"]},
        "ecus": {"type": "array", "items": {"type": "object"}},
    },
    ("present", "interface", "channel"),
)
