"""A generated, realistic demo data set: holders with registrations, proofs and permit histories.

`load_demo` writes everything through the service layer (`service.register`, `record_proof`,
`apply_for_permit`, `service.perform`, `service.change_address`), so every row is what the hub
itself would have written: citizen IDs sealed and hashed, a permit event and an outbox row for
every change, an audit entry for every act (refused applications included), cards made and
ended by the lifecycle. Nothing is inserted behind the services' back.

Histories are set in the past: each service call gets the day it happened as `today` (and an
office-hours moment of that day as `now`), never later than the hub clock's today. So the data
shows what two to three years of a hub look like: late registrations, incomplete and ineligible
first visits, Ningbo's twelve months of social insurance on file, endorsements in the window,
suspensions after expiry, restorations within and after the grace period, address changes, lost
and damaged cards, cancellations, settlement in Chifeng, and applications still awaiting their
card (some overdue).

Randomness is `random.Random(seed)` (people) and a second stream derived from the seed
(histories), so the same seed on the same day gives the same people and the same counts. Only
the values the services mint themselves (UUIDs, receipt numbers, card serials, ciphertexts) vary.
"""

from __future__ import annotations

import random
import time as timer
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from hub.audit import Actor, AuditEntry
from hub.card.store import Card
from hub.clock import CHINA
from hub.composition import Hub
from hub.db import unit_of_work
from hub.demo_activity import add_activity
from hub.permits import applications, eligibility, service
from hub.permits.domain import Action, add_months, add_years
from hub.permits.identity import CitizenId, CitizenIdVault, with_check_character
from hub.permits.jurisdictions import ConditionKind, Jurisdiction
from hub.permits.store import Outbox, Permit, PermitEvent, Proof, Registration, ThirdPartyReport
from hub.verification.store import WindowDecision

BATCH_SIZE = 200
"""Holders per transaction: large enough to be fast, small enough to report progress."""

EARLIEST_ARRIVAL = date(2023, 1, 1)

# How the demo's holders spread over the jurisdictions (a code not listed gets weight 10).
JURISDICTION_WEIGHTS: Mapping[str, int] = {
    "ningbo": 32,
    "inner-mongolia": 20,
    "nanning": 18,
    "chifeng": 16,
    "zhangzhou": 14,
}

# County-level divisions (GB/T 2260) where holders live, with the name used in addresses.
DISTRICTS: Mapping[str, Sequence[tuple[str, str]]] = {
    "chifeng": (
        ("150402", "赤峰市红山区"),
        ("150403", "赤峰市元宝山区"),
        ("150404", "赤峰市松山区"),
        ("150421", "赤峰市阿鲁科尔沁旗"),
        ("150422", "赤峰市巴林左旗"),
        ("150424", "赤峰市林西县"),
        ("150425", "赤峰市克什克腾旗"),
        ("150426", "赤峰市翁牛特旗"),
        ("150428", "赤峰市喀喇沁旗"),
        ("150429", "赤峰市宁城县"),
        ("150430", "赤峰市敖汉旗"),
    ),
    "inner-mongolia": (
        ("150102", "呼和浩特市新城区"),
        ("150103", "呼和浩特市回民区"),
        ("150104", "呼和浩特市玉泉区"),
        ("150105", "呼和浩特市赛罕区"),
        ("150202", "包头市东河区"),
        ("150203", "包头市昆都仑区"),
        ("150204", "包头市青山区"),
        ("150502", "通辽市科尔沁区"),
        ("150602", "鄂尔多斯市东胜区"),
        ("150603", "鄂尔多斯市康巴什区"),
        ("150702", "呼伦贝尔市海拉尔区"),
        ("152502", "锡林郭勒盟锡林浩特市"),
    ),
    "ningbo": (
        ("330203", "宁波市海曙区"),
        ("330205", "宁波市江北区"),
        ("330206", "宁波市北仑区"),
        ("330211", "宁波市镇海区"),
        ("330212", "宁波市鄞州区"),
        ("330213", "宁波市奉化区"),
        ("330281", "宁波市余姚市"),
        ("330282", "宁波市慈溪市"),
    ),
    "zhangzhou": (
        ("350602", "漳州市芗城区"),
        ("350603", "漳州市龙文区"),
        ("350604", "漳州市龙海区"),
        ("350623", "漳州市漳浦县"),
        ("350624", "漳州市诏安县"),
        ("350627", "漳州市南靖县"),
        ("350629", "漳州市华安县"),
    ),
    "nanning": (
        ("450102", "南宁市兴宁区"),
        ("450103", "南宁市青秀区"),
        ("450105", "南宁市江南区"),
        ("450107", "南宁市西乡塘区"),
        ("450108", "南宁市良庆区"),
        ("450109", "南宁市邕宁区"),
        ("450110", "南宁市武鸣区"),
    ),
}

# Where holders come from: household-registration divisions of other provinces, then nearer
# origins per jurisdiction (moves within a province are the commonest migration).
ORIGINS: Sequence[tuple[str, str]] = (
    ("210102", "辽宁省沈阳市和平区"),
    ("211302", "辽宁省朝阳市双塔区"),
    ("130102", "河北省石家庄市长安区"),
    ("130724", "河北省张家口市沽源县"),
    ("410105", "河南省郑州市金水区"),
    ("411723", "河南省驻马店市平舆县"),
    ("412722", "河南省周口市西华县"),
    ("510104", "四川省成都市锦江区"),
    ("511321", "四川省南充市南部县"),
    ("420102", "湖北省武汉市江岸区"),
    ("421127", "湖北省黄冈市黄梅县"),
    ("360102", "江西省南昌市东湖区"),
    ("362321", "江西省上饶市上饶县"),
    ("430102", "湖南省长沙市芙蓉区"),
    ("431222", "湖南省怀化市沅陵县"),
    ("340102", "安徽省合肥市瑶海区"),
    ("341221", "安徽省阜阳市临泉县"),
    ("370102", "山东省济南市历下区"),
    ("371321", "山东省临沂市沂南县"),
    ("140105", "山西省太原市小店区"),
    ("220102", "吉林省长春市南关区"),
    ("230102", "黑龙江省哈尔滨市道里区"),
    ("520102", "贵州省贵阳市南明区"),
    ("522422", "贵州省毕节市大方县"),
    ("530102", "云南省昆明市五华区"),
    ("610113", "陕西省西安市雁塔区"),
    ("620102", "甘肃省兰州市城关区"),
    ("500101", "重庆市万州区"),
    ("500230", "重庆市丰都县"),
)
NEARBY_ORIGINS: Mapping[str, Sequence[tuple[str, str]]] = {
    "chifeng": (
        ("150502", "内蒙古自治区通辽市科尔沁区"),
        ("150102", "内蒙古自治区呼和浩特市新城区"),
        ("152221", "内蒙古自治区兴安盟科尔沁右翼前旗"),
        ("211302", "辽宁省朝阳市双塔区"),
        ("130824", "河北省承德市滦平县"),
    ),
    "inner-mongolia": (
        ("150402", "内蒙古自治区赤峰市红山区"),
        ("150426", "内蒙古自治区赤峰市翁牛特旗"),
        ("150921", "内蒙古自治区乌兰察布市卓资县"),
        ("150521", "内蒙古自治区通辽市科尔沁左翼中旗"),
        ("140202", "山西省大同市城区"),
    ),
    "ningbo": (
        ("330106", "浙江省杭州市西湖区"),
        ("331023", "浙江省台州市天台县"),
        ("330326", "浙江省温州市平阳县"),
        ("341221", "安徽省阜阳市临泉县"),
        ("362321", "江西省上饶市上饶县"),
    ),
    "zhangzhou": (
        ("350102", "福建省福州市鼓楼区"),
        ("350203", "福建省厦门市思明区"),
        ("350583", "福建省泉州市南安市"),
        ("350821", "福建省龙岩市长汀县"),
        ("441522", "广东省汕尾市海丰县"),
    ),
    "nanning": (
        ("450802", "广西壮族自治区贵港市港北区"),
        ("451002", "广西壮族自治区百色市右江区"),
        ("450521", "广西壮族自治区北海市合浦县"),
        ("451421", "广西壮族自治区崇左市扶绥县"),
        ("450321", "广西壮族自治区桂林市阳朔县"),
    ),
}

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许"
    "韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN_MALE = (
    "伟", "强", "磊", "军", "洋", "勇", "杰", "涛", "明", "超", "刚", "平", "辉", "鹏", "华",
    "建国", "志强", "海涛", "晓东", "俊杰", "浩然", "宇轩", "子豪", "文博", "国庆", "永刚",
)  # fmt: skip
GIVEN_FEMALE = (
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "燕", "玲", "婷", "雪", "慧", "颖", "倩",
    "秀英", "桂英", "晓燕", "丽华", "欣怡", "梓涵", "雨婷", "佳琪", "淑珍", "海燕", "思雨",
)  # fmt: skip
MONGOLIAN_NAMES = ("巴特尔", "苏和", "额尔敦", "斯琴", "乌云", "萨仁", "其其格", "那日苏", "宝音")
STREETS = (
    "人民路", "解放路", "建设路", "新华路", "中山路", "文化路", "胜利路", "和平路", "团结路",
    "长青路", "光明街", "友谊路", "学府路", "兴安街", "站前路", "滨江路",
)  # fmt: skip
COMPANIES = (
    "建筑工程有限公司", "物流有限公司", "餐饮管理有限公司", "电子科技有限公司", "机械制造有限公司",
    "商贸有限公司", "家政服务有限公司", "汽车维修服务部", "服装有限公司", "物业管理有限公司",
)  # fmt: skip
SCHOOLS = ("第一中学", "职业技术学院", "第三中学", "技师学院", "师范学院", "实验小学")
CITY_SHORT = {
    "chifeng": "赤峰",
    "inner-mongolia": "内蒙古",
    "ningbo": "宁波",
    "zhangzhou": "漳州",
    "nanning": "南宁",
}
FALLBACK_REASONS = ("conditions-no-longer-met", "other")
"""Cancellation reasons where the jurisdiction's documents list none."""


# --- the people ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """One generated migrant, before anything is written. `citizen_id` is clear text: it lives
    only in memory and goes to the database sealed and hashed by the service."""

    citizen_id: str
    name: str
    ethnicity: str
    household_region: str
    household_address: str
    jurisdiction: str
    current_region: str
    current_address: str
    contact: str
    arrived_on: date
    plan: str  # the condition the person will claim: employment, residence, study, exempt

    @property
    def birth_date(self) -> date:
        return CitizenId(self.citizen_id).birth_date


def _random_day(rng: random.Random, first: date, last: date) -> date:
    if last <= first:
        return first
    return first + timedelta(days=rng.randint(0, (last - first).days))


def _pick_weighted(rng: random.Random, codes: Sequence[str]) -> str:
    weights = [JURISDICTION_WEIGHTS.get(code, 10) for code in codes]
    return rng.choices(list(codes), weights=weights)[0]


def _districts(place: Jurisdiction) -> Sequence[tuple[str, str]]:
    """Known districts, or ones formed from the jurisdiction's prefixes for a new config file."""
    known = [d for d in DISTRICTS.get(place.code, ()) if place.covers(d[0])]
    if known:
        return known
    made = []
    for prefix in place.divisions:
        code = (prefix + "0102")[:6] if len(prefix) < 6 else prefix
        made.append((code, f"{place.name.zh}{code}"))
    return made


def _address(rng: random.Random, district: str) -> str:
    return (
        f"{district}{rng.choice(STREETS)}{rng.randint(1, 399)}号"
        f"{rng.randint(1, 30)}栋{rng.randint(1, 6)}单元"
        f"{rng.randint(1, 28)}{rng.randint(1, 4):02d}室"
    )


def generate_people(
    places: Mapping[str, Jurisdiction], count: int, seed: int, today: date
) -> list[Person]:
    """`count` distinct people, the same for the same seed and day."""
    rng = random.Random(seed)
    codes = sorted(places)
    seen: set[str] = set()
    people: list[Person] = []
    last_arrival = today - timedelta(days=20)
    while len(people) < count:
        place = places[_pick_weighted(rng, codes)]
        arrived = _random_day(rng, EARLIEST_ARRIVAL, last_arrival)
        nearby = [o for o in NEARBY_ORIGINS.get(place.code, ()) if not place.covers(o[0])]
        pool = [o for o in ORIGINS if not place.covers(o[0])]
        origin = rng.choice(nearby) if nearby and rng.random() < 0.4 else rng.choice(pool)
        plan = rng.choices(("employment", "residence", "study", "exempt"), weights=(58, 32, 8, 2))[
            0
        ]
        if plan == "exempt" and not place.application.exemptions:
            plan = "employment"
        if plan == "study":
            born = _random_day(rng, date(1998, 1, 1), date(2008, 12, 31))
        elif plan == "residence" and rng.random() < 0.25:
            born = _random_day(rng, date(1950, 1, 1), date(1965, 12, 31))
        else:
            born = _random_day(rng, date(1962, 1, 1), date(2003, 12, 31))
        male = rng.random() < 0.55
        sequence = rng.randrange(0, 500) * 2 + (1 if male else 0)
        citizen_id = with_check_character(f"{origin[0]}{born:%Y%m%d}{sequence:03d}")
        if citizen_id in seen:
            continue
        seen.add(citizen_id)
        ethnicity = _ethnicity(rng, place.code, origin[0])
        if ethnicity == "蒙古族" and rng.random() < 0.6:
            name = rng.choice(MONGOLIAN_NAMES)
        else:
            given = GIVEN_MALE if male else GIVEN_FEMALE
            name = rng.choice(SURNAMES) + rng.choice(given)
        district_code, district_name = rng.choice(_districts(place))
        people.append(
            Person(
                citizen_id=citizen_id,
                name=name,
                ethnicity=ethnicity,
                household_region=origin[0],
                household_address=f"{origin[1]}{rng.choice(STREETS)}{rng.randint(1, 299)}号",
                jurisdiction=place.code,
                current_region=district_code,
                current_address=_address(rng, district_name),
                contact=f"1{rng.choice('358')}{rng.randint(0, 9)}{rng.randint(0, 99_999_999):08d}",
                arrived_on=arrived,
                plan=plan,
            )
        )
    return people


def _ethnicity(rng: random.Random, jurisdiction: str, origin: str) -> str:
    roll = rng.random()
    if jurisdiction in ("chifeng", "inner-mongolia") or origin.startswith("15"):
        if roll < 0.18:
            return "蒙古族"
        if roll < 0.22:
            return "满族"
        if roll < 0.24:
            return "回族"
    if jurisdiction == "nanning" or origin.startswith("45"):
        if roll < 0.30:
            return "壮族"
        if roll < 0.33:
            return "瑶族"
    if origin[:2] in ("43", "42", "50") and roll < 0.06:
        return "土家族"
    if origin[:2] in ("52", "53") and roll < 0.08:
        return "苗族"
    if origin[:2] in ("21", "13", "22") and roll < 0.06:
        return "满族"
    if jurisdiction == "zhangzhou" and roll < 0.02:
        return "畲族"
    return "汉族"


# --- the summary -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSummary:
    holders: int
    registrations: int
    late_registrations: int
    permits_by_state: dict[str, int]
    overdue_issuance: int
    proofs: int
    refused_applications: int
    events: int
    outbox: int
    cards: int
    taps: int
    reports_on_file: int
    worklist: int
    holders_by_jurisdiction: dict[str, int]
    seconds: float = field(compare=False)

    @property
    def permits(self) -> int:
        return sum(self.permits_by_state.values())

    def lines(self) -> list[str]:
        """What `hub demo` prints."""
        states = ", ".join(f"{n} {state}" for state, n in sorted(self.permits_by_state.items()))
        places = ", ".join(
            f"{n} {code}" for code, n in sorted(self.holders_by_jurisdiction.items())
        )
        return [
            f"holders: {self.holders} ({places})",
            f"registrations: {self.registrations} ({self.late_registrations} declared late)",
            f"permits: {self.permits} ({states}; {self.overdue_issuance} overdue for issuance)",
            f"proofs on file: {self.proofs}; refused applications: {self.refused_applications}",
            f"permit events: {self.events}; outbox rows: {self.outbox}; cards: {self.cards}",
            f"window taps: {self.taps}; third parties' reports: {self.reports_on_file} on file,"
            f" {self.worklist} on the worklist",
            f"loaded in {self.seconds:.1f} s",
        ]


def _count(session: Session, table: Any, *where: Any) -> int:
    query = sa.select(sa.func.count()).select_from(table)
    for condition in where:
        query = query.where(condition)
    return int(session.execute(query).scalar_one())


def summarise(session: Session, today: date, seconds: float) -> DemoSummary:
    states = session.execute(
        sa.select(col(Permit.state), sa.func.count()).group_by(col(Permit.state))
    ).all()
    places = session.execute(
        sa.select(col(Registration.jurisdiction), sa.func.count()).group_by(
            col(Registration.jurisdiction)
        )
    ).all()
    holders = session.execute(
        sa.select(sa.func.count(sa.distinct(col(Registration.citizen_id_hash))))
    ).scalar_one()
    return DemoSummary(
        holders=int(holders),
        registrations=_count(session, Registration),
        late_registrations=_count(session, Registration, col(Registration.declared_late)),
        permits_by_state={str(state): int(n) for state, n in states},
        overdue_issuance=_count(
            session, Permit, col(Permit.state) == "accepted", col(Permit.issue_due_on) < today
        ),
        proofs=_count(session, Proof),
        refused_applications=_count(
            session,
            AuditEntry,
            col(AuditEntry.action) == "application.assess",
            col(AuditEntry.outcome).startswith("refused"),
        ),
        events=_count(session, PermitEvent),
        outbox=_count(session, Outbox),
        cards=_count(session, Card),
        taps=_count(session, WindowDecision),
        reports_on_file=_count(
            session, ThirdPartyReport, col(ThirdPartyReport.status) == "on-file"
        ),
        worklist=_count(session, ThirdPartyReport, col(ThirdPartyReport.status) == "open"),
        holders_by_jurisdiction={str(code): int(n) for code, n in places},
        seconds=seconds,
    )


# --- loading ------------------------------------------------------------------------------------


class DemoRefused(ValueError):
    pass


class DatabaseNotEmpty(DemoRefused):
    """The database has registrations: a demo would double them or mix with real data."""

    def __init__(self, registrations: int) -> None:
        super().__init__(
            f"the database already has {registrations} registrations; load the demo only into "
            "an empty database (e.g. a new HUB_DATABASE_URL), so nothing is doubled or mixed"
        )
        self.registrations = registrations


def load_demo(
    hub: Hub,
    holders: int = 10_000,
    seed: int = 2026,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Generate `holders` people with their histories and write them through the services.

    Refuses (ValueError) a database that already has registrations, so a demo is never loaded
    twice or mixed into real data. Calls `progress(holders done so far)` after each batch.
    """
    if holders < 1:
        raise DemoRefused("the number of demo holders must be at least 1")
    started = timer.perf_counter()
    today = hub.clock.today()
    with unit_of_work(hub.engine) as session:
        existing = _count(session, Registration)
    if existing:
        raise DatabaseNotEmpty(existing)
    people = generate_people(hub.jurisdictions, holders, seed, today)
    rng = random.Random(f"{seed}:histories")
    vault = hub.vault
    done = 0
    for start in range(0, len(people), BATCH_SIZE):
        batch = people[start : start + BATCH_SIZE]
        with unit_of_work(hub.engine) as session:
            for offset, person in enumerate(batch):
                _History(hub, session, rng, today, person, start + offset, vault).live()
        done += len(batch)
        if progress is not None:
            progress(done)
    add_activity(hub, seed, today)
    with unit_of_work(hub.engine) as session:
        return summarise(session, today, timer.perf_counter() - started)


Step = tuple[date, Callable[[], "Permit | None"]]
"""Something done on a day: recording a proof (returns None) or a visit to the window."""


class _History:
    """One person's life in the registry, acted out in date order."""

    def __init__(
        self,
        hub: Hub,
        session: Session,
        rng: random.Random,
        today: date,
        person: Person,
        number: int,
        vault: CitizenIdVault,
    ) -> None:
        self.hub, self.session, self.rng, self.today = hub, session, rng, today
        self.person = person
        self.number = number
        self.place = hub.jurisdictions[person.jurisdiction]
        self.vault = vault
        self.office = Actor(f"demo-{self.place.code}-office", "public-security")
        self.last_now: datetime | None = None
        self.proof_count = 0
        self.hash = ""
        self.permit: Permit | None = None
        self.pending = False
        self.region = person.current_region

    # -- time -------------------------------------------------------------------------------

    def now(self, day: date) -> datetime:
        """An office-hours moment of `day` (China time), after the previous act of this person."""
        minutes = self.rng.randint(0, 7 * 60)
        moment = datetime.combine(day, time(8, 30), CHINA) + timedelta(minutes=minutes)
        moment = moment.astimezone(UTC)
        if self.last_now is not None and moment <= self.last_now:
            moment = self.last_now + timedelta(minutes=self.rng.randint(1, 9))
        self.last_now = moment
        return moment

    def day_between(self, first: date, last: date) -> date:
        return _random_day(self.rng, first, min(last, self.today))

    # -- the story --------------------------------------------------------------------------

    def live(self) -> None:
        registration = self.register()
        self.hash = registration.citizen_id_hash
        if self.rng.random() < 0.05:
            return  # registered, never applied
        permit = self.apply(registration)
        if permit is None:
            return
        self.permit = permit
        self.after_acceptance()

    def register(self) -> Registration:
        person, place, rng = self.person, self.place, self.rng
        calendar = self.hub.calendar
        late = rng.random() < 0.12
        days = rng.randint(8, 30) if late else rng.randint(1, 6)
        registered = min(calendar.add_working_days(person.arrived_on, days).due, self.today)
        citizen_id = CitizenId(person.citizen_id)
        temporary: date | None = None
        if place.registration.temporary_permit_years_count and rng.random() < 0.06:
            temporary = person.arrived_on - timedelta(days=rng.randint(200, 1500))
        declarant: service.Declarant | None = None
        proxy = place.registration.proxy
        age = _age(citizen_id.birth_date, registered)
        if proxy is not None and age < proxy.minors_under_years and "guardian" in proxy.by:
            parent_born = add_years(citizen_id.birth_date, -rng.randint(22, 35))
            parent = with_check_character(
                f"{person.household_region}{parent_born:%Y%m%d}{rng.randint(0, 999):03d}"
            )
            declarant = service.Declarant("guardian", CitizenId(parent), "minor")
        reason = {"employment": "employment", "study": "study", "residence": "family"}.get(
            person.plan, "business"
        )
        if person.plan == "employment" and rng.random() < 0.15:
            reason = "business"
        short = CITY_SHORT.get(place.code, "")
        workplace = {
            "employment": f"{short}{rng.choice('华兴达利恒泰鑫盛宏远')}{rng.choice('达通安顺源丰')}"
            f"{rng.choice(COMPANIES)}",
            "study": f"{short}市{rng.choice(SCHOOLS)}",
            "exempt": f"{short}{rng.choice('华兴达利恒')}投资有限公司",
        }.get(person.plan)
        return service.register(
            self.session,
            self.hub.lifecycle,
            self.vault,
            self.hub.jurisdictions,
            service.RegistrationInput(
                citizen_id=citizen_id,
                name=person.name,
                ethnicity=person.ethnicity,
                household_address=person.household_address,
                household_region=person.household_region,
                current_address=person.current_address,
                current_region=person.current_region,
                reason=reason,
                workplace=workplace,
                contact=person.contact,
                arrived_on=person.arrived_on,
                temporary_permit_since=temporary,
                declarant=declarant,
            ),
            actor=self.office,
            now=self.now(registered),
            today=registered,
        )

    # -- applying ----------------------------------------------------------------------------

    def apply(self, registration: Registration) -> Permit | None:
        rng, app = self.rng, self.place.application
        start = registration.residence_start
        eligible_from = max(
            add_months(start, app.residence.minimum_months), registration.registered_on
        )
        first_day = add_months(registration.registered_on, rng.randint(6, 14)) + timedelta(
            days=rng.randint(0, 25)
        )
        first_day = max(first_day, eligible_from + timedelta(days=1))
        if rng.random() < 0.10:  # a recent application, still waiting for its card
            deadline = self.place.issuance.deadline.within.amount
            overdue = rng.random() < 0.2
            back = rng.randint(deadline + 3, deadline + 40) if overdue else rng.randint(0, 10)
            candidate = self.today - timedelta(days=back)
            if candidate > eligible_from:
                first_day, self.pending = candidate, True
        if self.person.plan == "exempt":
            first_day = registration.registered_on + timedelta(days=rng.randint(3, 60))
        if first_day > self.today:
            return None
        steps = self.plan_steps(registration, first_day)
        steps.sort(key=lambda step: step[0])  # stable: same-day steps keep their order
        for day, do in steps:
            if day > self.today:
                return None
            permit = do()
            if permit is not None:
                return permit
        return None

    def choose_path(self) -> tuple[ConditionKind | None, str | None]:
        conditions = self.place.application.conditions
        plan = self.person.plan
        if plan == "exempt":
            return None, None
        kind: ConditionKind
        if plan == "study" and "study" in conditions:
            kind = "study"
        elif plan == "residence" and "residence" in conditions:
            kind = "residence"
        else:
            kind = "employment" if "employment" in conditions else next(iter(conditions))
        forms = conditions[kind].forms
        weights = [_FORM_WEIGHTS.get(form.code, 1) for form in forms]
        return kind, self.rng.choices(forms, weights=weights)[0].code

    def visit(self, registration: Registration, day: date, claim: applications.Claim) -> Step:
        def go() -> Permit | None:
            _, permit = applications.apply_for_permit(
                self.session,
                self.hub.lifecycle,
                self.hub.jurisdictions,
                registration.id,
                claim,
                actor=self.office,
                now=self.now(day),
                today=day,
            )
            return permit

        return day, go

    def proof(
        self,
        kind: str,
        department: str,
        valid_from: date,
        day: date,
        details: dict[str, Any],
        valid_to: date | None = None,
    ) -> Step:
        self.proof_count += 1
        prefix = {"hr-social-security": "HR", "housing": "ZJ", "education": "JY"}.get(
            department, "SC"
        )
        data = applications.ProofInput(
            citizen_id_hash=self.hash,
            kind=kind,
            source_department=department,
            source_proof_id=f"{prefix}-{self.place.code}-{self.number:06d}-{self.proof_count}",
            valid_from=valid_from,
            valid_to=valid_to,
            details=details,
        )

        def go() -> Permit | None:
            applications.record_proof(
                self.session,
                self.hub.audit,
                data,
                actor=Actor(f"demo-{department}-connector", department),
                now=self.now(day),
            )
            return None

        return day, go

    def plan_steps(self, registration: Registration, day: date) -> list[Step]:
        """The departments' proofs and the visits to the window, the last one complete."""
        rng, app = self.rng, self.place.application
        kind, form = self.choose_path()
        if kind is None or form is None:
            exemption = rng.choice(app.exemptions).code
            base = frozenset(app.base_materials.materials)
            return [self.visit(registration, day, applications.Claim(None, None, exemption, base))]
        chosen = app.conditions[kind].form(form)
        assert chosen is not None
        needed = frozenset(app.materials_for(kind, form))
        steps: list[Step] = []
        # A first visit too early (residence too short), or without any proof of a condition.
        roll = rng.random()
        early = registration.registered_on + timedelta(days=rng.randint(40, 150))
        eligible = add_months(registration.residence_start, app.residence.minimum_months)
        if roll < 0.05 and early < eligible and early < day:
            steps.append(
                self.visit(registration, early, applications.Claim(kind, form, None, needed))
            )
        elif roll < 0.08:
            before = day - timedelta(days=rng.randint(5, 30))
            if before > eligible:
                base = frozenset(app.base_materials.materials)
                claim = applications.Claim(None, None, None, base)
                steps.append(self.visit(registration, before, claim))
        since = registration.arrived_on + timedelta(days=rng.randint(0, 20))
        on_file = app.conditions[kind].record_on_file
        covered: set[str] = set()
        recorded = False
        if chosen.social_insurance is not None:  # Ningbo: the insurance record prevails
            rule = chosen.social_insurance
            months = eligibility.months_between(since, day)
            if months < rule.minimum_months:
                # Turned away for too short an insurance record, back once it is long enough.
                steps.append(self.insurance(since, day, months))
                steps.append(
                    self.visit(registration, day, applications.Claim(kind, form, None, needed))
                )
                day = add_months(since, rule.minimum_months) + timedelta(days=rng.randint(1, 40))
                months = eligibility.months_between(since, day)
            steps.append(self.insurance(since, day, months))
            covered.add("social-insurance-record")
            recorded = True
        proof = _PROOF_FOR.get((kind, form)) or _PROOF_FOR.get((kind, None))
        if proof is not None and not (eligibility.PROOF_KINDS[proof[0]].stands_for & needed):
            proof = None
        if proof is not None and (on_file is not None or rng.random() < 0.4):
            proof_kind, department = proof
            details: dict[str, Any] = {"since": since.isoformat()}
            if proof_kind == "school-enrolment":
                since = min(since, add_months(day, -13))
                details = {"since": since.isoformat(), "school": registration.workplace or ""}
            recorded_on = max(day - timedelta(days=rng.randint(0, 20)), since)
            steps.append(self.proof(proof_kind, department, since, recorded_on, details))
            recorded = True
            if on_file is not None and department in on_file.departments:
                covered |= set(eligibility.PROOF_KINDS[proof_kind].stands_for)
        presented = set(needed)
        if recorded and on_file is not None and rng.random() < 0.75:
            presented -= covered  # met by the record on file: only ID card and photo
        if rng.random() < 0.12:  # forgot something, back a few days later
            forgettable = sorted(presented - covered) or ["photo"]
            lacking = frozenset(presented - {rng.choice(forgettable)})
            steps.append(
                self.visit(registration, day, applications.Claim(kind, form, None, lacking))
            )
            day = day + timedelta(days=rng.randint(1, 12))
        claim = applications.Claim(kind, form, None, frozenset(presented))
        steps.append(self.visit(registration, day, claim))
        return steps

    def insurance(self, since: date, day: date, months: int) -> Step:
        """A statement of contributions from hr-social-security, valid for three months."""
        return self.proof(
            "social-insurance",
            "hr-social-security",
            day,
            day,
            {
                "months": months,
                "continuous": True,
                "back_paid_months": 0,
                "work_injury_only": False,
                "since": since.isoformat(),
            },
            valid_to=add_months(day, 3),
        )

    # -- the permit's life -------------------------------------------------------------------

    def act(self, action: Action, day: date, details: dict[str, Any] | None = None) -> None:
        assert self.permit is not None
        self.permit, _ = service.perform(
            self.session,
            self.hub.lifecycle,
            self.permit.id,
            action,
            expected_version=self.permit.version,
            actor=self.office,
            now=self.now(day),
            today=day,
            details=details,
        )

    def cancel(self, day: date) -> None:
        codes = [reason.code for reason in self.place.cancellation] or list(FALLBACK_REASONS)
        weights = [_CANCEL_WEIGHTS.get(code, 1) for code in codes]
        self.act(Action.CANCEL, day, {"reason": self.rng.choices(codes, weights=weights)[0]})

    def after_acceptance(self) -> None:
        permit, rng = self.permit, self.rng
        assert permit is not None
        if self.pending:
            return
        issue_day = permit.accepted_on + timedelta(
            days=rng.randint(2, max(3, min(12, (permit.issue_due_on - permit.accepted_on).days)))
        )
        if issue_day > self.today:
            return
        if rng.random() < 0.01:  # false materials found before the card was made
            self.act(Action.CANCEL, issue_day, {"reason": self.cancel_code("false-materials")})
            return
        self.act(Action.ISSUE, issue_day)
        cursor = issue_day
        rules = self.place.lifecycle_rules()
        while True:
            permit = self.permit
            assert permit is not None and permit.expires_on is not None
            expires = permit.expires_on
            opens = rules.endorsement_window.before(expires)
            cursor = self.incidents(cursor, min(opens - timedelta(days=1), self.today))
            if self.state() == "cancelled":
                return
            if rng.random() < 0.72:  # endorsed in the window
                if opens > self.today:
                    return
                day = self.day_between(max(opens, cursor), expires)
                self.act(Action.ENDORSE, day)
                cursor = day
                continue
            if expires >= self.today:
                return  # not endorsed yet, still valid
            self.act(Action.SUSPEND, expires + timedelta(days=1))  # the daily job's sweep
            suspended = expires + timedelta(days=1)
            roll = rng.random()
            if roll < 0.45:
                day = suspended + timedelta(days=rng.randint(1, 28))
                action = Action.ENDORSE
            elif roll < 0.65:
                day = suspended + timedelta(days=rng.randint(35, 160))
                action = Action.ENDORSE
            elif roll < 0.78:
                day = suspended + timedelta(days=rng.randint(10, 200))
                action = Action.CANCEL
            else:
                return  # left suspended
            if day > self.today:
                return
            if action is Action.CANCEL:
                self.cancel(day)
                return
            self.act(Action.ENDORSE, day)  # restoration
            cursor = day

    def state(self) -> str:
        assert self.permit is not None
        return self.permit.state

    def cancel_code(self, wanted: str) -> str:
        codes = [reason.code for reason in self.place.cancellation]
        return wanted if not codes or wanted in codes else codes[-1]

    def incidents(self, cursor: date, last: date) -> date:
        """Moves, lost and damaged cards, cancellation or settlement in (cursor, last]."""
        rng = self.rng
        if last <= cursor:
            return cursor
        planned: list[tuple[date, str]] = []
        for kind, chance in (("move", 0.12), ("lost", 0.035), ("damaged", 0.02), ("cancel", 0.02)):
            if rng.random() < chance:
                planned.append((self.day_between(cursor + timedelta(days=1), last), kind))
        settlement = self.place.settlement
        settle_from: date | None = None
        if settlement is not None and self.permit is not None and rng.random() < 0.25:
            settle_from = add_years(self.permit.residence_start, settlement.continuous_years)
            if cursor < settle_from <= last:
                planned.append((self.day_between(settle_from, last), "settle"))
        for day, kind in sorted(planned):
            assert self.permit is not None
            if self.permit.state == "cancelled":
                break
            day = max(day, cursor)
            if kind == "move":
                self.move(day)
            elif kind == "lost":
                self.act(Action.REPLACE, day, {"fee_paid": True})
            elif kind == "damaged":
                self.act(Action.RENEW, day, {"fee_paid": True})
            elif kind == "cancel":
                self.cancel(day)
            elif settlement is not None:
                due = add_years(self.permit.residence_start, settlement.continuous_years)
                if due <= day:  # residence may have restarted since it was planned
                    self.act(Action.SETTLE, day)
            cursor = day
        return cursor

    def move(self, day: date) -> None:
        assert self.permit is not None
        rng = self.rng
        choices = [d for d in _districts(self.place) if d[0] != self.region]
        code, district = rng.choice(choices or list(_districts(self.place)))
        self.region = code
        delay = rng.randint(25, 60) if rng.random() < 0.15 else rng.randint(0, 6)
        moved = max(day - timedelta(days=delay), self.permit.valid_from or day)
        self.permit, _ = service.change_address(
            self.session,
            self.hub.lifecycle,
            self.place,
            self.permit.id,
            expected_version=self.permit.version,
            moved_on=moved,
            new_address=_address(rng, district),
            new_region=code,
            actor=self.office,
            now=self.now(day),
            today=day,
        )


_FORM_WEIGHTS: Mapping[str, int] = {
    "labour-contract": 10,
    "hired": 10,
    "employed": 10,
    "appointed": 3,
    "business-licence": 3,
    "business": 3,
    "rented": 10,
    "resident": 10,
    "owned": 4,
    "own-property": 4,
    "purchased": 2,
    "dormitory": 3,
    "relative-property": 2,
    "enrolled": 1,
}

_PROOF_FOR: Mapping[tuple[str, str | None], tuple[str, str]] = {
    ("employment", "business-licence"): ("business-licence", "market-regulation"),
    ("employment", "business"): ("business-licence", "market-regulation"),
    ("employment", None): ("employment", "hr-social-security"),
    ("residence", "owned"): ("property-registration", "housing"),
    ("residence", "own-property"): ("property-registration", "housing"),
    ("residence", "purchased"): ("property-registration", "housing"),
    ("residence", "relative-property"): ("property-registration", "housing"),
    ("residence", "rented"): ("rental-registration", "housing"),
    ("residence", "resident"): ("rental-registration", "housing"),
    ("study", None): ("school-enrolment", "education"),
}
"""The department record that stands for each form's material (no record for dormitories or
Ningbo's land and fishery contracts: those are proved on paper)."""

_CANCEL_WEIGHTS: Mapping[str, int] = {
    "conditions-no-longer-met": 8,
    "local-household-registration": 2,
    "false-materials": 1,
    "other": 3,
}


def _age(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))
