"""Demo data: a Swedish operator's catalogue, its customers and six months of their usage.

Used by ``manage.py seed_demo`` (and its test). Everything is deterministic: customer ``i``
is drawn from its own ``random.Random`` seeded with ``i``, so seeding 200 customers and later
2,000 gives the same first 200, and a second run finds every customer already there and adds
nothing. Dates are relative to the day it runs (``timezone.localdate()``).

The first customers are personas the demo links point at (a heavy user paying overage, a
light user on a big plan, a roamer, a household with three numbers, a binding period ending
soon, an English-speaking customer, a legacy plan above today's list price, a paper
invoice); the rest are drawn from the same profiles at random.

Units follow ``billing.models.UsageRecord``: data in MB, calls in seconds, SMS in messages,
one daily aggregate per kind and day, dated at noon Stockholm time; ``country`` is empty at
home and the ISO code abroad.
"""

import calendar
import os
import random
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.db import transaction

from billing.models import (
    Consent,
    ConsentKind,
    Customer,
    DeliveryMethod,
    Discount,
    OneOffCharge,
    Plan,
    PlanKind,
    PlanPrice,
    RoamingZone,
    Subscription,
    SubscriptionEvent,
    SubscriptionStatus,
    UsageKind,
    UsageRecord,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
SEED = "touchpoint-demo-v1"
HISTORY_MONTHS = 6
CUSTOMER_PREFIX = "D"
FINANCE_USERNAME = "finance"
FINANCE_GROUP = "Finance"
FINANCE_APPS = ("billing", "invoices", "dunning")
DEFAULT_FINANCE_PASSWORD = "touchpoint-demo"  # noqa: S105 - a demo login, printed on purpose
SUPPORT_USERNAME = "support"
DEFAULT_SUPPORT_PASSWORD = "touchpoint-support"  # noqa: S105 - a demo login, printed on purpose
# What the demo's support agents may do in the admin: edit canned replies, read conversations.
SUPPORT_PERMISSIONS = (
    ("chat", "cannedreply", ("view", "add", "change", "delete")),
    ("chat", "conversation", ("view",)),
    ("chat", "message", ("view",)),
)
USAGE_BATCH_SIZE = 5000

# --- The catalogue ---------------------------------------------------------------------


@dataclass(frozen=True)
class PlanSpec:
    code: str
    name: str
    kind: str
    data_gb: Decimal | None  # None = unlimited
    voice_minutes: int | None
    sms: int | None
    data_overage_per_gb: Decimal
    prices: tuple[tuple[date, Decimal], ...]  # list-price history, oldest first
    available: bool = True
    voice_overage_per_minute: Decimal = Decimal("0.49")
    sms_overage_each: Decimal = Decimal("0.69")
    description: str = ""

    @property
    def list_price(self) -> Decimal:
        return self.prices[-1][1]

    def price_on(self, day: date) -> Decimal:
        """The list price valid on ``day`` (the oldest one before the history starts)."""
        price = self.prices[0][1]
        for valid_from, fee in self.prices:
            if valid_from <= day:
                price = fee
        return price


D = Decimal
PLANS: tuple[PlanSpec, ...] = (
    PlanSpec(
        "mobil-3",
        "Mobil 3 GB",
        PlanKind.MOBILE,
        D(3),
        500,
        500,
        D("29.00"),
        ((date(2023, 3, 1), D("179.00")), (date(2025, 9, 1), D("199.00"))),
        description="3 GB surf, 500 min samtal och 500 sms i månaden",
    ),
    PlanSpec(
        "mobil-10",
        "Mobil 10 GB",
        PlanKind.MOBILE,
        D(10),
        None,
        None,
        D("29.00"),
        ((date(2023, 3, 1), D("279.00")), (date(2025, 9, 1), D("299.00"))),
        description="10 GB surf, fria samtal och sms",
    ),
    PlanSpec(
        "mobil-30",
        "Mobil 30 GB",
        PlanKind.MOBILE,
        D(30),
        None,
        None,
        D("19.00"),
        # A price cut: customers who joined before keep paying 449 (a loyalty-parity case).
        ((date(2023, 3, 1), D("449.00")), (date(2026, 3, 1), D("399.00"))),
        description="30 GB surf, fria samtal och sms",
    ),
    PlanSpec(
        "mobil-obegransad",
        "Mobil Obegränsad",
        PlanKind.MOBILE,
        None,
        None,
        None,
        D("0.00"),
        ((date(2023, 3, 1), D("549.00")), (date(2026, 3, 1), D("499.00"))),
        description="Obegränsad surf, fria samtal och sms",
    ),
    PlanSpec(
        "mobil-8-2023",
        "Mobil 8 GB (2023)",
        PlanKind.MOBILE,
        D(8),
        None,
        None,
        D("39.00"),
        # Sold until 2024; its price went up while Mobil 10 GB costs less today.
        ((date(2023, 3, 1), D("299.00")), (date(2025, 1, 1), D("329.00"))),
        available=False,
        description="Säljs inte längre: 8 GB surf, fria samtal och sms",
    ),
    PlanSpec(
        "bredband-100",
        "Bredband 100/100",
        PlanKind.BROADBAND,
        None,
        None,
        None,
        D("0.00"),
        ((date(2024, 1, 1), D("329.00")), (date(2025, 9, 1), D("349.00"))),
        description="Fiber 100 Mbit/s",
    ),
    PlanSpec(
        "bredband-250",
        "Bredband 250/250",
        PlanKind.BROADBAND,
        None,
        None,
        None,
        D("0.00"),
        ((date(2024, 1, 1), D("449.00")), (date(2026, 1, 1), D("399.00"))),
        description="Fiber 250 Mbit/s",
    ),
    PlanSpec(
        "bredband-1000",
        "Bredband 1000/1000",
        PlanKind.BROADBAND,
        None,
        None,
        None,
        D("0.00"),
        ((date(2024, 1, 1), D("599.00")), (date(2026, 1, 1), D("549.00"))),
        description="Fiber 1000 Mbit/s",
    ),
)
PLAN_SPECS = {p.code: p for p in PLANS}

# (code, name, countries, per MB, per minute, per SMS); EU/EEA roams as at home.
ZONES: tuple[tuple[str, str, str, str, str, str], ...] = (
    (
        "europa-utanfor-eu",
        "Europa utanför EU",
        "CH,GB,TR,RS,BA,ME,MK,AL,UA,MD,AD,MC,SM,VA,FO,GI,GE,AM",
        "0.39",
        "4.90",
        "1.90",
    ),
    ("usa-kanada", "USA och Kanada", "US,CA", "0.79", "9.90", "2.90"),
    ("resten-av-varlden", "Resten av världen", "*", "1.49", "14.90", "3.90"),
)


def catalogue_ensure() -> dict[str, Plan]:
    """Create the demo plans, their price history and the roaming zones where missing.

    Existing rows are left as they are, so edits made in the admin survive a re-seed.
    """
    plans: dict[str, Plan] = {}
    for spec in PLANS:
        plan, _created = Plan.objects.get_or_create(
            code=spec.code,
            defaults={
                "name": spec.name,
                "kind": spec.kind,
                "monthly_fee": spec.list_price,
                "data_included_gb": spec.data_gb,
                "voice_included_minutes": spec.voice_minutes,
                "sms_included": spec.sms,
                "data_overage_per_gb": spec.data_overage_per_gb,
                "voice_overage_per_minute": (
                    spec.voice_overage_per_minute if spec.voice_minutes is not None else D(0)
                ),
                "sms_overage_each": spec.sms_overage_each if spec.sms is not None else D(0),
                "binding_months_options": [0, 12, 24] if spec.available else [],
                "available_for_new_customers": spec.available,
                "description": spec.description,
            },
        )
        for valid_from, fee in spec.prices:
            PlanPrice.objects.get_or_create(
                plan=plan, valid_from=valid_from, defaults={"monthly_fee": fee}
            )
        plans[spec.code] = plan
    for code, name, countries, per_mb, per_minute, per_sms in ZONES:
        RoamingZone.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "countries": countries,
                "data_per_mb": D(per_mb),
                "voice_per_minute": D(per_minute),
                "sms_each": D(per_sms),
            },
        )
    return plans


# --- People and places -----------------------------------------------------------------

FEMALE = (
    "Anna",
    "Eva",
    "Maria",
    "Karin",
    "Sara",
    "Lena",
    "Emma",
    "Kristina",
    "Elin",
    "Ida",
    "Johanna",
    "Sofia",
    "Linnea",
    "Malin",
    "Camilla",
    "Ingrid",
    "Hanna",
    "Amanda",
    "Julia",
    "Maja",
    "Alva",
    "Elsa",
    "Wilma",
    "Ebba",
    "Agnes",
    "Astrid",
    "Frida",
    "Moa",
    "Klara",
    "Ella",
    "Helena",
    "Cecilia",
    "Louise",
    "Annika",
    "Birgitta",
    "Margareta",
    "Ulla",
    "Jenny",
    "Therese",
    "Nora",
)
MALE = (
    "Erik",
    "Lars",
    "Karl",
    "Anders",
    "Johan",
    "Per",
    "Nils",
    "Jan",
    "Mikael",
    "Lennart",
    "Magnus",
    "Fredrik",
    "Daniel",
    "Henrik",
    "Oskar",
    "Lucas",
    "William",
    "Hugo",
    "Liam",
    "Elias",
    "Axel",
    "Viktor",
    "Emil",
    "Filip",
    "Isak",
    "Gustav",
    "Olof",
    "Sven",
    "Björn",
    "Mattias",
    "Jonas",
    "Andreas",
    "Stefan",
    "Patrik",
    "Niklas",
    "Tobias",
    "Joakim",
    "Marcus",
    "Albin",
    "Ali",
)
SURNAMES = (
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Larsson",
    "Olsson",
    "Persson",
    "Svensson",
    "Gustafsson",
    "Pettersson",
    "Jonsson",
    "Jansson",
    "Hansson",
    "Bengtsson",
    "Jönsson",
    "Lindberg",
    "Jakobsson",
    "Magnusson",
    "Lindström",
    "Olofsson",
    "Lindqvist",
    "Lindgren",
    "Berg",
    "Axelsson",
    "Bergström",
    "Lundberg",
    "Lind",
    "Lundgren",
    "Lundqvist",
    "Mattsson",
    "Berglund",
    "Fredriksson",
    "Sandberg",
    "Henriksson",
    "Forsberg",
    "Sjöberg",
    "Wallin",
    "Engström",
    "Eklund",
    "Danielsson",
    "Lundin",
    "Håkansson",
    "Björk",
    "Bergman",
    "Gunnarsson",
    "Holm",
    "Wikström",
    "Samuelsson",
    "Isaksson",
    "Fransson",
    "Bergqvist",
    "Nyström",
    "Holmberg",
    "Arvidsson",
    "Löfgren",
    "Söderberg",
    "Nyberg",
    "Blomqvist",
    "Claesson",
    "Nordström",
    "Mårtensson",
    "Lundström",
    "Hassan",
    "Ali",
    "Mohammed",
    "Nguyen",
)
ENGLISH_FIRST = (
    "James",
    "Oliver",
    "Emily",
    "Sophie",
    "Daniel",
    "Priya",
    "Michael",
    "Hannah",
    "Thomas",
    "Grace",
    "Ryan",
    "Chloe",
)
ENGLISH_LAST = (
    "Whitfield",
    "Taylor",
    "Brown",
    "Wilson",
    "Evans",
    "Sharma",
    "O'Connor",
    "Murphy",
    "Clarke",
    "Walker",
    "Hughes",
)
STREETS = (
    "Storgatan",
    "Drottninggatan",
    "Kungsgatan",
    "Vasagatan",
    "Skolgatan",
    "Kyrkogatan",
    "Järnvägsgatan",
    "Götgatan",
    "Sveavägen",
    "Linnégatan",
    "Tegnérgatan",
    "Parkvägen",
    "Björkvägen",
    "Ekvägen",
    "Tallvägen",
    "Lärkvägen",
    "Rosengatan",
    "Prästgatan",
    "Hantverkargatan",
    "Åsögatan",
    "Bergsgatan",
    "Fabriksgatan",
    "Nygatan",
    "Strandvägen",
    "Ringvägen",
    "Stationsgatan",
    "Idrottsvägen",
    "Solvägen",
    "Granvägen",
    "Södra vägen",
)
# (city, first two digits of its postal codes, weight)
CITIES: tuple[tuple[str, str, int], ...] = (
    ("Stockholm", "11", 18),
    ("Solna", "16", 3),
    ("Nacka", "13", 3),
    ("Göteborg", "41", 10),
    ("Malmö", "21", 7),
    ("Uppsala", "75", 5),
    ("Västerås", "72", 3),
    ("Örebro", "70", 3),
    ("Linköping", "58", 3),
    ("Helsingborg", "25", 3),
    ("Jönköping", "55", 3),
    ("Norrköping", "60", 3),
    ("Lund", "22", 2),
    ("Umeå", "90", 2),
    ("Gävle", "80", 2),
    ("Sundsvall", "85", 1),
    ("Luleå", "97", 1),
    ("Karlstad", "65", 2),
    ("Växjö", "35", 1),
    ("Visby", "62", 1),
)
# Reserved example domains (RFC 2606): demo mail can never reach a real person.
MAIL_DOMAINS = ("example.com", "example.net", "example.org")
EU_TRIP_COUNTRIES = ("ES", "IT", "GR", "HR", "FR", "PT", "DE", "DK")
NON_EU_TRIP_COUNTRIES = ("US", "GB", "TR", "TH", "CH", "US", "CA", "JP")


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    return "".join(c for c in folded if c.isalnum() or c in ".-")


def msisdn(index: int, k: int) -> str:
    """A unique +4670 mobile number for subscription ``k`` (< 8) of customer ``index``.

    Affine maps modulo 10^7 with multipliers coprime to it, around a reversal of the seven
    digits: each step is a bijection, so numbers never repeat yet look unordered.
    """
    x = (index * 8 + k) % 10_000_000
    y = int(f"{(x * 7_654_321 + 1_234_567) % 10_000_000:07d}"[::-1])
    return f"+4670{(y * 3_935_081 + 4_812_733) % 10_000_000:07d}"


def add_months(day: date, months: int) -> date:
    years, month0 = divmod(day.month - 1 + months, 12)
    year = day.year + years
    return date(year, month0 + 1, min(day.day, calendar.monthrange(year, month0 + 1)[1]))


def history_periods(today: date, months: int = HISTORY_MONTHS) -> list[date]:
    """First days of the last ``months`` complete months, oldest first."""
    this_month = today.replace(day=1)
    return [add_months(this_month, -k) for k in range(months, 0, -1)]


# --- What one customer looks like -----------------------------------------------------


@dataclass
class Trip:
    country: str
    first: date
    last: date


@dataclass
class SubSpec:
    plan: str
    label: str
    profile: str  # light, normal, heavy, talker, broadband
    start: date
    binding_end: date | None
    agreed: Decimal
    identifier: str = ""
    end: date | None = None
    trips: list[Trip] = field(default_factory=list)
    discounts: list[tuple[str, Decimal, date, date | None]] = field(default_factory=list)
    one_offs: list[tuple[str, Decimal, date]] = field(default_factory=list)


@dataclass
class CustomerSpec:
    number: str
    name: str
    email: str
    phone: str
    language: str
    address: str
    postal_code: str
    city: str
    delivery: str
    persona: str
    subs: list[SubSpec]
    consents: list[tuple[str, datetime, str]]


PERSONAS = (
    "heavy",
    "light_big_plan",
    "roamer",
    "household",
    "binding_soon",
    "english",
    "legacy_plan",
    "paper",
)


class _Draw:
    """Draws one customer from its own seeded generator."""

    def __init__(self, index: int, today: date) -> None:
        self.index = index
        self.today = today
        self.rng = random.Random(f"{SEED}:{index}")  # noqa: S311 - demo data, not secrets
        self.periods = history_periods(today)
        self.window_start = self.periods[0]

    # -- small helpers
    def day_between(self, first: date, last: date) -> date:
        return first + timedelta(days=self.rng.randint(0, max(0, (last - first).days)))

    def moment(self, first: date, last: date) -> datetime:
        day = self.day_between(first, last)
        return datetime.combine(
            day, dtime(self.rng.randint(8, 21), self.rng.randint(0, 59)), tzinfo=STOCKHOLM
        )

    def agreed_price(self, plan: str, start: date) -> Decimal:
        """What a customer who joined on ``start`` pays: the price then, raised with later
        list increases but not lowered by later cuts (that is how operators do it)."""
        spec = PLAN_SPECS[plan]
        return max(spec.price_on(start), spec.list_price)

    def binding(self, plan: str) -> tuple[date, date | None]:
        """A start date and binding end: some ended, some ending in 30–60 days, the rest
        spread over the coming year, some with no binding at all."""
        r = self.rng.random()
        latest_start = self.periods[-1] + timedelta(days=14)
        if r < 0.12:  # ends in 30–60 days
            end = self.today + timedelta(days=self.rng.randint(30, 60))
            return add_months(end, -24) + timedelta(days=1), end
        if r < 0.40:  # ends within the coming year
            months = self.rng.choice((12, 24))
            end = self.today + timedelta(days=self.rng.randint(61, 365))
            start = add_months(end, -months) + timedelta(days=1)
            if start > latest_start:
                start = latest_start
                end = add_months(start, months) - timedelta(days=1)
            return start, end
        if r < 0.75:  # ended 1–30 months ago
            months = self.rng.choice((12, 24))
            end = self.today - timedelta(days=self.rng.randint(20, 900))
            return add_months(end, -months) + timedelta(days=1), end
        start = self.day_between(date(2019, 1, 1), self.window_start - timedelta(days=30))
        return start, None

    def profile_for(self, plan: str) -> str:
        spec = PLAN_SPECS[plan]
        if spec.kind == PlanKind.BROADBAND:
            return "broadband"
        r = self.rng.random()
        if spec.data_gb is None or spec.data_gb >= 30:
            return "light" if r < 0.35 else ("normal" if r < 0.9 else "heavy")
        if plan == "mobil-3":
            return "normal" if r < 0.5 else ("heavy" if r < 0.75 else "talker")
        return "normal" if r < 0.7 else ("heavy" if r < 0.9 else "light")

    def sub(self, plan: str, label: str = "", profile: str | None = None) -> SubSpec:
        start, binding_end = self.binding(plan)
        agreed = self.agreed_price(plan, start)
        if self.rng.random() < 0.05 and PLAN_SPECS[plan].available:
            agreed -= D(50)  # a recruitment price agreed at signing
        return SubSpec(
            plan=plan,
            label=label,
            profile=profile or self.profile_for(plan),
            start=start,
            binding_end=binding_end,
            agreed=agreed,
        )

    def random_mobile_plan(self) -> str:
        return self.rng.choices(
            ("mobil-3", "mobil-10", "mobil-30", "mobil-obegransad", "mobil-8-2023"),
            weights=(20, 35, 22, 15, 8),
        )[0]

    def random_broadband_plan(self) -> str:
        return self.rng.choices(("bredband-100", "bredband-250", "bredband-1000"), (3, 5, 2))[0]

    def trip(self, countries: tuple[str, ...], month: date, days: tuple[int, int]) -> Trip:
        _, last_day = calendar.monthrange(month.year, month.month)
        length = self.rng.randint(*days)
        first = month + timedelta(days=self.rng.randint(0, max(0, last_day - length)))
        return Trip(self.rng.choice(countries), first, first + timedelta(days=length - 1))

    # -- the customer
    def customer(self) -> CustomerSpec:
        rng = self.rng
        persona = PERSONAS[self.index] if self.index < len(PERSONAS) else ""
        english = persona == "english" or (not persona and rng.random() < 0.07)
        if english:
            first, last = rng.choice(ENGLISH_FIRST), rng.choice(ENGLISH_LAST)
        else:
            first = rng.choice(FEMALE if rng.random() < 0.5 else MALE)
            last = rng.choice(SURNAMES)
            if rng.random() < 0.08:
                last = f"{last}-{rng.choice(SURNAMES)}"
        city, prefix, _weight = rng.choices(CITIES, weights=[c[2] for c in CITIES])[0]
        street = rng.choice(STREETS)
        address = f"{street} {rng.randint(1, 78)}"
        if rng.random() < 0.4:
            address += f", lgh {rng.randint(10, 16)}{rng.randint(1, 3):02d}"
        postal = f"{prefix}{rng.randint(0, 9)} {rng.randint(10, 99)}"
        local = f"{_ascii(first)}.{_ascii(last)}"
        if rng.random() < 0.4:
            local += str(rng.randint(1, 99))
        email = f"{local}@{rng.choice(MAIL_DOMAINS)}"
        delivery = rng.choices(
            (
                DeliveryMethod.EMAIL,
                DeliveryMethod.SMS,
                DeliveryMethod.EMAIL_AND_SMS,
                DeliveryMethod.EMAIL_PDF,
                DeliveryMethod.PAPER,
            ),
            weights=(72, 16, 4, 5, 3),
        )[0]
        subs = self.persona_subs(persona) if persona else self.random_subs()
        if persona == "paper":
            delivery = DeliveryMethod.PAPER
        elif persona in {"heavy", "roamer", "household", "english", "light_big_plan"}:
            delivery = DeliveryMethod.EMAIL
        elif persona == "legacy_plan":
            delivery = DeliveryMethod.SMS
        for k, sub in enumerate(subs):
            if PLAN_SPECS[sub.plan].kind == PlanKind.BROADBAND:
                sub.identifier = f"FIBER-{(self.index * 8 + k) * 7919 % 10_000_000:07d}"
            else:
                sub.identifier = msisdn(self.index, k)
            self.extras(sub, persona)
        mobiles = [s.identifier for s in subs if s.identifier.startswith("+")]
        phone = mobiles[0] if mobiles else msisdn(self.index, 7)
        return CustomerSpec(
            number=f"{CUSTOMER_PREFIX}{self.index + 1:06d}",
            name=f"{first} {last}",
            email=email,
            phone=phone,
            language="en" if english else "sv",
            address=address,
            postal_code=postal,
            city=city,
            delivery=delivery,
            persona=persona,
            subs=subs,
            consents=self.consents(min(s.start for s in subs)),
        )

    def random_subs(self) -> list[SubSpec]:
        rng = self.rng
        r = rng.random()
        subs = [self.sub(self.random_mobile_plan())]
        if r < 0.15:
            subs.append(self.sub(self.random_broadband_plan()))
        elif r < 0.30:
            subs.append(self.sub(self.random_mobile_plan()))
        elif r < 0.36:
            subs.append(self.sub(self.random_mobile_plan()))
            subs.append(self.sub(self.random_broadband_plan()))
        elif r < 0.40:
            subs = [self.sub(self.random_broadband_plan())]
        if len(subs) > 1 and rng.random() < 0.12:
            # One line ended during the history: its last invoice is prorated.
            ended = subs[-1]
            first_day = max(ended.start, self.window_start) + timedelta(days=20)
            if first_day < self.periods[-1]:
                ended.end = self.day_between(first_day, self.periods[-1] - timedelta(days=1))
        return subs

    def persona_subs(self, persona: str) -> list[SubSpec]:
        today = self.today
        if persona == "heavy":
            sub = self.sub("mobil-10", profile="heavy")
            sub.binding_end = today - timedelta(days=140)
            sub.start = add_months(sub.binding_end, -24) + timedelta(days=1)
            sub.agreed = self.agreed_price("mobil-10", sub.start)
            return [sub]
        if persona == "light_big_plan":
            sub = self.sub("mobil-obegransad", profile="light")
            sub.binding_end = today - timedelta(days=300)
            sub.start = add_months(sub.binding_end, -12) + timedelta(days=1)
            sub.agreed = self.agreed_price("mobil-obegransad", sub.start)
            return [sub]
        if persona == "roamer":
            sub = self.sub("mobil-30", profile="normal")
            sub.start, sub.binding_end = date(2024, 9, 1), today + timedelta(days=200)
            sub.start = add_months(sub.binding_end, -24) + timedelta(days=1)
            sub.agreed = self.agreed_price("mobil-30", sub.start)  # 449: above today's 399
            summer = next((p for p in self.periods if p.month == 7), self.periods[1])
            sub.trips = [
                Trip("ES", summer + timedelta(days=9), summer + timedelta(days=20)),
                Trip(
                    "GB", self.periods[2] + timedelta(days=3), self.periods[2] + timedelta(days=6)
                ),
                Trip(
                    "US",
                    self.periods[-1] + timedelta(days=8),
                    self.periods[-1] + timedelta(days=15),
                ),
            ]
            return [sub]
        if persona == "household":
            subs = [
                self.sub("mobil-30", label="Karin", profile="normal"),
                self.sub("mobil-10", label="Anders", profile="normal"),
                self.sub("mobil-3", label="Alva", profile="heavy"),
            ]
            for sub in subs:
                sub.start, sub.binding_end = subs[0].start, subs[0].binding_end
                sub.agreed = self.agreed_price(sub.plan, sub.start)
            for sub in subs[1:]:
                sub.discounts.append(("Familjerabatt extra nummer", D("50.00"), sub.start, None))
            subs.append(self.sub("bredband-250", label="Hemma", profile="broadband"))
            subs[0].trips = [self.trip(EU_TRIP_COUNTRIES, self.periods[2], (7, 12))]
            return subs
        if persona == "binding_soon":
            mobile = self.sub("mobil-10", profile="normal")
            mobile.binding_end = today + timedelta(days=45)
            mobile.start = add_months(mobile.binding_end, -24) + timedelta(days=1)
            mobile.agreed = self.agreed_price("mobil-10", mobile.start)
            return [mobile, self.sub("bredband-100", profile="broadband")]
        if persona == "english":
            sub = self.sub("mobil-10", profile="normal")
            sub.binding_end = today + timedelta(days=150)
            sub.start = add_months(sub.binding_end, -12) + timedelta(days=1)
            sub.agreed = self.agreed_price("mobil-10", sub.start)
            sub.trips = [self.trip(("GB",), self.periods[-2], (4, 6))]
            return [sub]
        if persona == "legacy_plan":
            sub = self.sub("mobil-8-2023", profile="normal")
            sub.start, sub.binding_end = date(2023, 6, 15), date(2025, 6, 14)
            sub.agreed = self.agreed_price("mobil-8-2023", sub.start)
            return [sub]
        sub = self.sub("mobil-3", profile="light")  # paper
        sub.start, sub.binding_end = date(2021, 2, 1), None
        sub.agreed = self.agreed_price("mobil-3", sub.start)
        return [sub]

    def extras(self, sub: SubSpec, persona: str) -> None:
        """Campaign discounts, one-off charges and trips abroad, drawn for one line."""
        rng = self.rng
        spec = PLAN_SPECS[sub.plan]
        if not persona and rng.random() < 0.14:
            start = max(add_months(self.periods[0], -3 + rng.randint(0, 8)), sub.start)
            months = rng.choice((3, 6, 6, 12))
            amount = rng.choice((D("100.00"), D("100.00"), D("50.00")))
            sub.discounts.append(
                (
                    f"Kampanj: {amount:.0f} kr rabatt i {months} månader",
                    amount,
                    start,
                    add_months(start, months) - timedelta(days=1),
                )
            )
        if persona == "binding_soon" and spec.kind == PlanKind.MOBILE:
            start = add_months(self.periods[-1], -5)
            sub.discounts.append(
                (
                    "Kampanj: 100 kr rabatt i 6 månader",
                    D("100.00"),
                    start,
                    add_months(start, 6) - timedelta(days=1),
                )
            )
        if spec.kind == PlanKind.BROADBAND and sub.start >= self.window_start:
            sub.one_offs.append(("Router (engångsavgift)", D("495.00"), sub.start))
        elif spec.kind == PlanKind.MOBILE and not persona and rng.random() < 0.04:
            day = self.day_between(self.window_start, self.periods[-1] + timedelta(days=27))
            sub.one_offs.append((rng.choice(("Nytt SIM-kort", "Byte till eSIM")), D("99.00"), day))
        if spec.kind == PlanKind.MOBILE and not persona:
            summer = [p for p in self.periods if p.month in (6, 7, 8)] or self.periods[:1]
            if rng.random() < 0.35:
                sub.trips.append(self.trip(EU_TRIP_COUNTRIES, rng.choice(summer), (5, 14)))
            if rng.random() < 0.08:
                month = rng.choice(self.periods)
                sub.trips.append(self.trip(NON_EU_TRIP_COUNTRIES, month, (3, 10)))

    def consents(self, since: date) -> list[tuple[str, datetime, str]]:
        rng = self.rng
        given = []
        last = self.window_start - timedelta(days=1)
        first = min(since, last)
        for kind, share in (
            (ConsentKind.PERSONALISED_OFFERS, 0.6),
            (ConsentKind.MARKETING_EMAIL, 0.35),
            (ConsentKind.MARKETING_SMS, 0.15),
        ):
            if rng.random() < share:
                source = rng.choice(("crm", "webshop", "butik"))
                given.append((str(kind), self.moment(first, last), source))
        return given


def customer_specs(count: int, today: date) -> list[CustomerSpec]:
    return [_Draw(index, today).customer() for index in range(count)]


# --- Usage -----------------------------------------------------------------------------

# Monthly data in GB per profile: (low, high); None = relative to the plan.
PROFILE_DATA_GB = {"light": (0.8, 2.8), "talker": (1.5, 2.9), "broadband": (150.0, 900.0)}
PROFILE_VOICE_MIN = {
    "light": (30, 150),
    "normal": (60, 380),
    "heavy": (120, 420),
    "talker": (430, 760),
    "broadband": (0, 0),
}
PROFILE_SMS = {"light": (5, 60), "normal": (20, 160), "heavy": (40, 260), "talker": (60, 300)}


def _monthly_data_gb(rng: random.Random, sub: SubSpec) -> float:
    if sub.profile in PROFILE_DATA_GB:
        return rng.uniform(*PROFILE_DATA_GB[sub.profile])
    included = PLAN_SPECS[sub.plan].data_gb
    if sub.profile == "heavy":
        if included is None:
            return rng.uniform(40, 95)
        return float(included) + rng.uniform(2.5, 8.0)
    if included is None:
        return rng.uniform(8, 25)
    return float(included) * rng.uniform(0.45, 0.92)


def usage_rows(
    sub: SubSpec, subscription_id: int, first: date, last: date
) -> Iterator[UsageRecord]:
    """Daily aggregates of one line from ``first`` to ``last`` (both included).

    Drawn from a generator seeded by the line's identifier, so the same line always gets the
    same usage.
    """
    rng = random.Random(f"{SEED}:usage:{sub.identifier}")  # noqa: S311 - demo data
    start = max(first, sub.start)
    end = min(last, sub.end) if sub.end else last
    monthly: dict[tuple[int, int], tuple[float, float, float]] = {}
    trips = {
        trip.first + timedelta(days=d): trip.country
        for trip in sub.trips
        for d in range((trip.last - trip.first).days + 1)
    }
    broadband = sub.profile == "broadband"
    day = start
    while day <= end:
        key = (day.year, day.month)
        if key not in monthly:
            days = calendar.monthrange(*key)[1]
            voice = PROFILE_VOICE_MIN.get(sub.profile, (60, 300))
            sms = PROFILE_SMS.get(sub.profile, (0, 0))
            monthly[key] = (
                _monthly_data_gb(rng, sub) * 1024 / days,
                rng.uniform(*voice) * 60 / days,
                rng.uniform(*sms) / days,
            )
        data_mb, voice_s, sms_n = monthly[key]
        weekend = 1.25 if day.weekday() >= 5 else 0.9
        country = trips.get(day, "")
        if country and country not in EU_TRIP_COUNTRIES:
            # Outside the EU/EEA people hold back: a few hundred MB and short calls.
            data = rng.uniform(15, 220)
            call_seconds = rng.choice((0, 0, 60, 95, 240, 410))
            texts = rng.randint(0, 4)
        else:
            data = data_mb * weekend * rng.lognormvariate(0, 0.35)
            call_seconds = 0 if rng.random() < 0.2 else round(voice_s * rng.lognormvariate(0, 0.6))
            texts = round(rng.uniform(0, 2 * sms_n))
        noon = datetime.combine(day, dtime(12), tzinfo=STOCKHOLM)
        stem = f"demo:{sub.identifier}:{day:%Y%m%d}"
        yield UsageRecord(
            subscription_id=subscription_id,
            source_id=f"{stem}:data",
            kind=UsageKind.DATA,
            quantity=D(f"{data:.1f}"),
            occurred_at=noon,
            country=country,
        )
        if not broadband:
            if call_seconds:
                yield UsageRecord(
                    subscription_id=subscription_id,
                    source_id=f"{stem}:voice",
                    kind=UsageKind.VOICE,
                    quantity=D(int(call_seconds)),
                    occurred_at=noon,
                    country=country,
                )
            if texts:
                yield UsageRecord(
                    subscription_id=subscription_id,
                    source_id=f"{stem}:sms",
                    kind=UsageKind.SMS,
                    quantity=D(texts),
                    occurred_at=noon,
                    country=country,
                )
        day += timedelta(days=1)


# --- Writing it ------------------------------------------------------------------------


@dataclass
class SeedResult:
    customers_created: int = 0
    customers_existing: int = 0
    subscriptions: int = 0
    usage_records: int = 0
    discounts: int = 0
    one_offs: int = 0
    consents: int = 0
    seconds: float = 0.0


def _chunks(rows: Iterator[UsageRecord], size: int) -> Iterator[list[UsageRecord]]:
    batch: list[UsageRecord] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@transaction.atomic
def demo_customers_create(*, count: int, today: date) -> SeedResult:
    """Create the first ``count`` demo customers that are not there yet, with everything
    they have: subscriptions, discounts, one-off charges, consents and usage up to
    yesterday. Customers already stored (by customer number) are left untouched."""
    started = time.monotonic()
    plans = catalogue_ensure()
    specs = customer_specs(count, today)
    existing = set(
        Customer.objects.filter(customer_number__in=[s.number for s in specs]).values_list(
            "customer_number", flat=True
        )
    )
    new = [s for s in specs if s.number not in existing]
    result = SeedResult(customers_existing=len(existing), customers_created=len(new))
    if not new:
        result.seconds = time.monotonic() - started
        return result
    customers = Customer.objects.bulk_create(
        Customer(
            customer_number=s.number,
            name=s.name,
            email=s.email,
            phone=s.phone,
            language=s.language,
            address=s.address,
            postal_code=s.postal_code,
            city=s.city,
            delivery_method=s.delivery,
        )
        for s in new
    )
    pairs = [(spec, sub) for spec in new for sub in spec.subs]
    by_number = {c.customer_number: c for c in customers}
    subscriptions = Subscription.objects.bulk_create(
        Subscription(
            customer=by_number[spec.number],
            plan=plans[sub.plan],
            identifier=sub.identifier,
            label=sub.label,
            agreed_monthly_price=sub.agreed,
            start_date=sub.start,
            end_date=sub.end,
            binding_end=sub.binding_end,
            notice_period_months=1,
            status=SubscriptionStatus.ENDED if sub.end else SubscriptionStatus.ACTIVE,
        )
        for spec, sub in pairs
    )
    result.subscriptions = len(subscriptions)
    events, discounts, one_offs = [], [], []
    for (_spec, sub), row in zip(pairs, subscriptions, strict=True):
        events.append(
            SubscriptionEvent(
                subscription=row,
                kind=SubscriptionEvent.Kind.CREATED,
                occurred_at=datetime.combine(sub.start, dtime(10), tzinfo=STOCKHOLM),
                via="import",
                details={"plan": sub.plan, "agreed_monthly_price": str(sub.agreed)},
            )
        )
        if sub.end:
            events.append(
                SubscriptionEvent(
                    subscription=row,
                    kind=SubscriptionEvent.Kind.ENDED,
                    occurred_at=datetime.combine(sub.end, dtime(23, 59), tzinfo=STOCKHOLM),
                    via="import",
                    details={"reason": "customer_notice"},
                )
            )
        discounts += [
            Discount(
                subscription=row,
                description=text,
                monthly_amount=amount,
                valid_from=valid_from,
                valid_until=valid_until,
            )
            for text, amount, valid_from, valid_until in sub.discounts
        ]
        one_offs += [
            OneOffCharge(subscription=row, description=text, amount=amount, charge_date=day)
            for text, amount, day in sub.one_offs
        ]
    SubscriptionEvent.objects.bulk_create(events)
    Discount.objects.bulk_create(discounts)
    OneOffCharge.objects.bulk_create(one_offs)
    consents = [
        Consent(customer=by_number[spec.number], kind=kind, given_at=given_at, source=source)
        for spec in new
        for kind, given_at, source in spec.consents
    ]
    Consent.objects.bulk_create(consents)
    result.discounts, result.one_offs, result.consents = (
        len(discounts),
        len(one_offs),
        len(consents),
    )
    first, last = history_periods(today)[0], today - timedelta(days=1)
    rows = (
        record
        for (_spec, sub), row in zip(pairs, subscriptions, strict=True)
        for record in usage_rows(sub, row.id, first, last)
    )
    for batch in _chunks(rows, USAGE_BATCH_SIZE):
        UsageRecord.objects.bulk_create(batch, batch_size=USAGE_BATCH_SIZE)
        result.usage_records += len(batch)
    result.seconds = time.monotonic() - started
    return result


def finance_password() -> str:
    """The demo finance login's password: DEMO_FINANCE_PASSWORD, else the printed default."""
    return os.environ.get("DEMO_FINANCE_PASSWORD", DEFAULT_FINANCE_PASSWORD)


def finance_user_ensure(*, password: str) -> AbstractBaseUser:
    """The demo's finance staff: a "Finance" group holding every model permission of the
    billing, invoices and dunning apps, and a staff user "finance" in it (not a superuser).

    Idempotent; the password is set on every call, so it is always the one printed."""
    group, _ = Group.objects.get_or_create(name=FINANCE_GROUP)
    group.permissions.set(Permission.objects.filter(content_type__app_label__in=FINANCE_APPS))
    return _staff_user_ensure(
        username=FINANCE_USERNAME,
        email="ekonomi@nordtele.example",
        first_name="Ekonomi",
        password=password,
        group=group,
    )


def _staff_user_ensure(
    *, username: str, email: str, first_name: str, password: str, group: Group
) -> AbstractBaseUser:
    """A demo staff user (not a superuser) in ``group``, with ``password`` set anew."""
    user, _ = get_user_model().objects.get_or_create(
        username=username, defaults={"email": email, "first_name": first_name}
    )
    user.is_staff = True
    user.is_active = True
    user.set_password(password)
    user.save()
    user.groups.add(group)
    return user


def support_password() -> str:
    """The demo support login's password: DEMO_SUPPORT_PASSWORD, else the printed default."""
    return os.environ.get("DEMO_SUPPORT_PASSWORD", DEFAULT_SUPPORT_PASSWORD)


def support_user_ensure(*, password: str) -> AbstractBaseUser:
    """The demo's support agent: a staff user "support" in the group the console admits
    (``CHAT_SUPPORT_GROUP``), which may also edit canned replies and read conversations in
    the admin. Idempotent; the password is set on every call, so it is always the one
    printed."""
    group, _ = Group.objects.get_or_create(name=settings.CHAT_SUPPORT_GROUP)
    wanted = [
        f"{action}_{model}" for _app, model, actions in SUPPORT_PERMISSIONS for action in actions
    ]
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="chat", codename__in=wanted)
    )
    return _staff_user_ensure(
        username=SUPPORT_USERNAME,
        email="kundtjanst@nordtele.example",
        first_name="Sara",
        password=password,
        group=group,
    )
