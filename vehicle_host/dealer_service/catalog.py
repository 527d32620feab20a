"""The reference dealer's sample data: a parts catalog, fitment, DTC suggestions, campaigns.

Fitment is by WMI (the VIN's first three characters) and model year (the VIN's 10th character,
read in the 2010-2039 cycle). ``*`` as WMI means the part fits every vehicle of those years.
"""

from __future__ import annotations

from typing import Final

#: (part number, name, category, price in cents, stock, keywords)
PARTS: Final[tuple[tuple[str, str, str, int, int, str], ...]] = (
    ("SP-1001", "Iridium spark plug", "ignition", 1290, 120, "spark plug ignition misfire"),
    ("SP-1002", "Platinum spark plug", "ignition", 890, 80, "spark plug ignition misfire"),
    ("IC-2001", "Ignition coil pack", "ignition", 6450, 25, "coil ignition misfire"),
    ("IC-2002", "Ignition coil (pencil type)", "ignition", 4990, 18, "coil ignition misfire"),
    ("IL-2101", "Ignition lead set", "ignition", 3400, 12, "lead cable ignition"),
    ("CAT-3001", "Catalytic converter (euro 6)", "exhaust", 48900, 4, "catalytic converter cat exhaust"),
    ("O2-3101", "Upstream oxygen sensor", "exhaust", 7900, 30, "o2 lambda oxygen sensor"),
    ("O2-3102", "Downstream oxygen sensor", "exhaust", 7400, 22, "o2 lambda oxygen sensor"),
    ("EG-3201", "Exhaust manifold gasket", "exhaust", 1850, 40, "gasket exhaust manifold"),
    ("MAF-4001", "Mass air flow sensor", "intake", 11900, 10, "maf air flow sensor intake"),
    ("IG-4101", "Intake manifold gasket set", "intake", 2650, 35, "gasket intake manifold vacuum leak"),
    ("AF-4201", "Engine air filter", "intake", 1990, 60, "air filter intake service"),
    ("TB-4301", "Throttle body", "intake", 21900, 5, "throttle body intake"),
    ("PCV-4401", "PCV valve", "intake", 1450, 28, "pcv valve crankcase vacuum"),
    ("FI-4501", "Fuel injector", "fuel", 9800, 16, "fuel injector"),
    ("FF-4601", "Fuel filter", "fuel", 2490, 44, "fuel filter service"),
    ("FP-4701", "Fuel pump module", "fuel", 24900, 6, "fuel pump"),
    ("WSS-5001", "Front wheel speed sensor", "brakes", 5400, 20, "abs wheel speed sensor"),
    ("WSS-5002", "Rear wheel speed sensor", "brakes", 5200, 14, "abs wheel speed sensor"),
    ("BP-5101", "Front brake pad set", "brakes", 4990, 50, "brake pads front"),
    ("BP-5102", "Rear brake pad set", "brakes", 4290, 45, "brake pads rear"),
    ("BD-5201", "Front brake disc (pair)", "brakes", 11900, 15, "brake disc rotor"),
    ("BF-5301", "Brake fluid DOT4 1 l", "brakes", 1290, 90, "brake fluid dot4"),
    ("OF-6001", "Oil filter", "service", 990, 150, "oil filter service"),
    ("EO-6101", "Engine oil 5W-30 5 l", "service", 4590, 70, "engine oil 5w30 service"),
    ("CF-6201", "Cabin air filter", "service", 1790, 65, "cabin filter pollen service"),
    ("WB-6301", "Wiper blade set", "service", 2490, 55, "wiper blades"),
    ("CO-6401", "Coolant G13 1.5 l", "cooling", 1590, 48, "coolant antifreeze"),
    ("TH-6501", "Thermostat with housing", "cooling", 3990, 19, "thermostat coolant temperature"),
    ("WP-6601", "Water pump", "cooling", 8900, 9, "water pump coolant"),
    ("CTS-6701", "Coolant temperature sensor", "cooling", 2190, 24, "coolant temperature sensor ect"),
    ("BAT-7001", "AGM battery 70 Ah", "electrical", 17900, 8, "battery agm start stop"),
    ("ALT-7101", "Alternator 150 A", "electrical", 29900, 3, "alternator charging"),
    ("CKP-7201", "Crankshaft position sensor", "electrical", 3890, 21, "crankshaft position sensor ckp"),
    ("CMP-7301", "Camshaft position sensor", "electrical", 3690, 17, "camshaft position sensor cmp"),
    ("EGR-8001", "EGR valve", "emissions", 19900, 7, "egr valve emissions"),
    ("EVP-8101", "EVAP purge valve", "emissions", 4590, 13, "evap purge valve canister"),
    ("GC-8201", "Fuel filler cap", "emissions", 1290, 33, "gas fuel cap evap leak"),
    ("TPMS-9001", "TPMS sensor", "wheels", 4490, 26, "tpms tyre tire pressure sensor"),
    ("SB-9101", "Serpentine belt", "engine", 2890, 31, "belt serpentine drive"),
)

#: (part number, WMI or "*", first model year, last model year)
FITMENT: Final[tuple[tuple[str, str, int, int], ...]] = (
    ("SP-1001", "WVW", 2012, 2024),
    ("SP-1001", "WBA", 2014, 2024),
    ("SP-1002", "JTD", 2010, 2022),
    ("SP-1002", "1HG", 2010, 2022),
    ("IC-2001", "WVW", 2012, 2024),
    ("IC-2001", "VF1", 2013, 2023),
    ("IC-2002", "WBA", 2014, 2024),
    ("IC-2002", "JTD", 2010, 2022),
    ("IC-2002", "1HG", 2012, 2022),
    ("IL-2101", "JTD", 2010, 2016),
    ("CAT-3001", "WVW", 2015, 2024),
    ("CAT-3001", "VF1", 2015, 2023),
    ("O2-3101", "*", 2010, 2039),
    ("O2-3102", "*", 2010, 2039),
    ("EG-3201", "WVW", 2012, 2024),
    ("MAF-4001", "WVW", 2012, 2024),
    ("MAF-4001", "WBA", 2014, 2024),
    ("MAF-4001", "YV1", 2013, 2022),
    ("IG-4101", "WVW", 2012, 2024),
    ("IG-4101", "YV1", 2013, 2022),
    ("AF-4201", "*", 2010, 2039),
    ("TB-4301", "WBA", 2014, 2024),
    ("PCV-4401", "WVW", 2012, 2020),
    ("FI-4501", "JTD", 2010, 2022),
    ("FF-4601", "*", 2010, 2039),
    ("FP-4701", "1HG", 2012, 2022),
    ("WSS-5001", "WVW", 2012, 2024),
    ("WSS-5001", "JTD", 2012, 2022),
    ("WSS-5002", "WVW", 2012, 2024),
    ("BP-5101", "*", 2010, 2039),
    ("BP-5102", "*", 2010, 2039),
    ("BD-5201", "WVW", 2012, 2024),
    ("BF-5301", "*", 2010, 2039),
    ("OF-6001", "*", 2010, 2039),
    ("EO-6101", "*", 2010, 2039),
    ("CF-6201", "*", 2010, 2039),
    ("WB-6301", "*", 2010, 2039),
    ("CO-6401", "WVW", 2012, 2024),
    ("TH-6501", "WVW", 2012, 2024),
    ("WP-6601", "WVW", 2012, 2024),
    ("CTS-6701", "*", 2010, 2039),
    ("BAT-7001", "*", 2010, 2039),
    ("ALT-7101", "WBA", 2014, 2024),
    ("CKP-7201", "*", 2010, 2039),
    ("CMP-7301", "*", 2010, 2039),
    ("EGR-8001", "VF1", 2013, 2023),
    ("EVP-8101", "*", 2010, 2039),
    ("GC-8201", "*", 2010, 2039),
    ("TPMS-9001", "*", 2014, 2039),
    ("SB-9101", "*", 2010, 2039),
)

#: (DTC, part number, rank, reason)
SUGGESTIONS: Final[tuple[tuple[str, str, int, str], ...]] = (
    ("P0300", "SP-1001", 1, "random misfires: worn spark plugs are the most common cause"),
    ("P0300", "IC-2001", 2, "random misfires: a weak ignition coil"),
    ("P0301", "SP-1001", 1, "cylinder 1 misfire: replace the spark plug first"),
    ("P0301", "SP-1002", 1, "cylinder 1 misfire: replace the spark plug first"),
    ("P0301", "IC-2001", 2, "cylinder 1 misfire persists after new plugs: the ignition coil"),
    ("P0301", "IC-2002", 2, "cylinder 1 misfire persists after new plugs: the ignition coil"),
    ("P0302", "SP-1001", 1, "cylinder 2 misfire: replace the spark plug first"),
    ("P0302", "IC-2001", 2, "cylinder 2 misfire: the ignition coil"),
    ("P0420", "CAT-3001", 1, "catalyst efficiency below threshold: the catalytic converter"),
    ("P0420", "O2-3102", 2, "a failing downstream O2 sensor can report a good catalyst as bad"),
    ("P0420", "O2-3101", 3, "upstream O2 sensor"),
    ("P0171", "MAF-4001", 1, "system too lean: a dirty or failing MAF sensor"),
    ("P0171", "IG-4101", 2, "system too lean: a vacuum leak at the intake gasket"),
    ("P0171", "PCV-4401", 3, "system too lean: a stuck-open PCV valve"),
    ("P0128", "TH-6501", 1, "coolant below thermostat temperature: the thermostat"),
    ("P0128", "CTS-6701", 2, "coolant temperature sensor"),
    ("P0335", "CKP-7201", 1, "crankshaft position sensor circuit"),
    ("P0340", "CMP-7301", 1, "camshaft position sensor circuit"),
    ("P0401", "EGR-8001", 1, "EGR flow insufficient: the EGR valve"),
    ("P0455", "GC-8201", 1, "large EVAP leak: check the fuel cap first"),
    ("P0455", "EVP-8101", 2, "large EVAP leak: the purge valve"),
    ("C0035", "WSS-5001", 1, "left front wheel speed sensor circuit"),
    ("C0040", "WSS-5001", 1, "right front wheel speed sensor circuit"),
    ("C0045", "WSS-5002", 1, "left rear wheel speed sensor circuit"),
    ("C0050", "WSS-5002", 1, "right rear wheel speed sensor circuit"),
)

#: The summer campaign offers (``GET /v1/campaigns``).
CAMPAIGNS: Final[tuple[dict[str, object], ...]] = (
    {
        "id": "SUMMER-AC",
        "title": "Summer air-conditioning check",
        "description": "Refrigerant level, leak test and cabin filter replacement.",
        "priceCents": 7900,
        "currency": "EUR",
        "parts": ["CF-6201"],
        "validFrom": "2025-06-01",
        "validTo": "2025-08-31",
    },
    {
        "id": "SUMMER-BRAKES",
        "title": "Holiday brake check",
        "description": "Pads, discs and brake fluid inspected; 15 % off front brake pads.",
        "priceCents": 2900,
        "currency": "EUR",
        "parts": ["BP-5101", "BF-5301"],
        "validFrom": "2025-06-01",
        "validTo": "2025-08-31",
    },
    {
        "id": "SUMMER-SERVICE",
        "title": "Summer oil service",
        "description": "Engine oil, oil filter and air filter at a fixed price.",
        "priceCents": 14900,
        "currency": "EUR",
        "parts": ["EO-6101", "OF-6001", "AF-4201"],
        "validFrom": "2025-06-01",
        "validTo": "2025-09-15",
    },
)

CURRENCY: Final = "EUR"
#: Workshop slots each working day (local time at the dealer), one service bay.
SLOT_TIMES: Final = ("08:00", "09:00", "10:00", "11:00", "13:00", "14:00", "15:00", "16:00")
#: The VIN's 10th character -> model year, 2010-2039 cycle (I, O, Q, U, Z and 0 are never used).
YEAR_CODES: Final = "ABCDEFGHJKLMNPRSTVWXY123456789"


def model_year(vin: str) -> int | None:
    """The model year a 17-character VIN encodes (2010-2039 cycle), or None if unreadable."""
    if len(vin) != 17:
        return None
    index = YEAR_CODES.find(vin[9].upper())
    return 2010 + index if index >= 0 else None
