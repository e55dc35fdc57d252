"""The Python half of the query interop corpus (run by `tests/query_interop.rs`, not directly).

DataJoint 2.3.5 declares a small pipeline schema, fills it with deterministic rows, evaluates every
query of `CORPUS` and writes, for each query id, the rows it fetched and its heading (attribute
names in order, primary key) as JSON, or the error it raised. The Rust test opens the same schema
with dj-rs, evaluates its own expression for each id and compares.

    python query_corpus.py setup <database url> <schema name> <output.json>
    python query_corpus.py drop  <database url> <schema name>

Values in the JSON: null, booleans, integers and floats as JSON; decimals as {"$dec": text};
dates as "YYYY-MM-DD"; datetimes as "YYYY-MM-DD HH:MM:SS.ffffff"; strings as strings.
"""
import datetime
import decimal
import json
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")
import datajoint as dj  # noqa: E402
from _interop import configure  # noqa: E402

SUBJECTS = 12
USERS = [("alice", "Alice Archer"), ("bob", "Bob Baker"), ("carol", "Carol Cook")]
SPECIES = [("mus musculus", "mouse"), ("rattus norvegicus", "rat"), ("danio rerio", "zebrafish")]
FILTERS = [("low", 0.3), ("high", 0.6)]


def declare(schema):
    """The pipeline: two lookups, subjects, sessions with a renamed foreign key to their owner,
    trials as a part table, notes on some sessions, a filter lookup and a computed table."""

    @schema
    class User(dj.Lookup):
        definition = """
        # people who run sessions
        user_name : varchar(32)
        ---
        full_name : varchar(64)
        """
        contents = USERS

    @schema
    class Species(dj.Lookup):
        definition = """
        species : varchar(32)
        ---
        common_name : varchar(64)
        """
        contents = SPECIES

    @schema
    class Subject(dj.Manual):
        definition = """
        # experimental subjects
        subject_id : int32
        ---
        -> Species
        sex : enum('F', 'M', 'U')
        dob : date
        weight = null : float64
        notes = '' : varchar(255)
        """

    @schema
    class Session(dj.Manual):
        definition = """
        -> Subject
        session_idx : int16
        ---
        -> User.proj(owner='user_name')
        session_date : date
        duration : float64    # minutes
        started : datetime
        rig = null : varchar(16)
        """

        class Trial(dj.Part):
            definition = """
            -> master
            trial_idx : int32
            ---
            outcome : enum('hit', 'miss', 'abort')
            rt = null : float64
            """

    @schema
    class SessionNote(dj.Manual):
        definition = """
        -> Session
        ---
        note : varchar(64)
        """

    @schema
    class Filter(dj.Lookup):
        definition = """
        filter_name : varchar(16)
        ---
        cutoff : float64
        """
        contents = FILTERS

    @schema
    class TrialStats(dj.Computed):
        definition = """
        -> Session
        -> Filter
        ---
        n_fast : int32
        mean_rt = null : float64
        """

        def make(self, key):
            cutoff = (Filter & key).fetch1("cutoff")
            rts = [r["rt"] for r in (Session.Trial & key).to_dicts() if r["rt"] is not None]
            fast = [rt for rt in rts if rt < cutoff]
            self.insert1(dict(key, n_fast=len(fast), mean_rt=float(np.mean(fast)) if fast else None))

    return dict(User=User, Species=Species, Subject=Subject, Session=Session,
                SessionNote=SessionNote, Filter=Filter, TrialStats=TrialStats)


def fill(t):
    """Deterministic rows: subjects 1..12 (some without sessions, some without weight), 0 to 3
    sessions each owned by alice or bob (carol owns none), 0 to 4 trials per session."""
    t["Subject"].insert(
        dict(subject_id=i, species=SPECIES[i % 3][0], sex="FMU"[i % 3 if i % 5 else 2] if i % 7 else "F",
             dob=datetime.date(2023, 1 + i % 12, 1 + (i * 5) % 28),
             weight=None if i % 4 == 0 else round(18.0 + i * 1.25, 2),
             notes="" if i % 3 else f"note {i}: ok")
        for i in range(1, SUBJECTS + 1))
    sessions, trials, notes = [], [], []
    for i in range(1, SUBJECTS + 1):
        for s in range(i % 4):
            sessions.append(dict(
                subject_id=i, session_idx=s, owner=USERS[(i + s) % 2][0],
                session_date=datetime.date(2024, 1, 1) + datetime.timedelta(days=i * 3 + s),
                duration=round(10.0 + (i * 7 + s * 13) % 50 + 0.25 * s, 2),
                started=datetime.datetime(2024, 1, 1, 9, 0, 0) + datetime.timedelta(days=i * 3 + s, minutes=17 * s),
                rig=None if (i + s) % 5 == 0 else f"rig{(i + s) % 3}"))
            if (i + s) % 3 == 0:
                notes.append(dict(subject_id=i, session_idx=s, note=f"s{i}-{s}"))
            for k in range((i + s) % 5):
                trials.append(dict(subject_id=i, session_idx=s, trial_idx=k,
                                   outcome=("hit", "miss", "abort")[(i + s + k) % 3],
                                   rt=None if (i + k) % 6 == 0 else round(0.1 + ((i * 31 + s * 17 + k * 7) % 90) / 100, 3)))
    t["Session"].insert(sessions)
    t["Session"].Trial.insert(trials)
    t["SessionNote"].insert(notes)
    t["TrialStats"].populate()


# id -> (Python expression over the tables, fetch options). `order_by` in the options makes the
# result ordered (compared row by row); every other result is compared as a set.
CORPUS = [
    ("subject_all", "Subject", {}),
    ("restrict_string", "Subject & \"sex = 'F'\"", {}),
    ("restrict_string_and", "Subject & \"sex = 'F' AND weight > 25\"", {}),
    ("restrict_dict", "Subject & {'sex': 'F', 'species': 'mus musculus'}", {}),
    ("restrict_dict_extra_key", "Subject & {'sex': 'F', 'no_such_attribute': 3}", {}),
    ("restrict_or_list", "Subject & [{'subject_id': 1}, {'subject_id': 3}, 'weight > 30']", {}),
    ("restrict_and_list", "Subject & dj.AndList([\"sex = 'F'\", 'weight > 22'])", {}),
    ("restrict_not", "Subject & dj.Not(\"sex = 'F'\")", {}),
    ("restrict_not_list", "Subject & dj.Not([{'subject_id': 2}, {'subject_id': 4}])", {}),
    ("restrict_null", "Subject & 'weight IS NULL'", {}),
    ("restrict_date", "Session & \"session_date >= '2024-01-20'\"", {}),
    ("restrict_like", "Subject & \"species LIKE 'mus%%'\"", {}),
    ("restrict_in", "Session & \"owner IN ('alice', 'carol')\"", {}),
    ("restrict_chain", "Session & \"duration > 20\" & {'owner': 'bob'}", {}),
    ("semijoin", "Subject & Session", {}),
    ("semijoin_restricted", "Subject & (Session & 'duration > 40')", {}),
    ("semijoin_renamed", "User & Session.proj(user_name='owner')", {}),
    ("antijoin", "Subject - Session", {}),
    ("antijoin_string", "Subject - \"sex = 'M'\"", {}),
    ("antijoin_renamed", "User - Session.proj(user_name='owner')", {}),
    ("antijoin_part", "Session - Session.Trial", {}),
    ("join_two", "Subject * Session", {}),
    ("join_three", "Species * Subject * Session", {}),
    ("join_three_restricted", "Subject * Session * Session.Trial & \"outcome = 'hit'\"", {}),
    ("join_renamed_fk", "Session * User.proj(owner='user_name')", {}),
    ("join_renamed_fk_cond", "(Session * User.proj(owner='user_name', owner_full='full_name')) & \"owner_full = 'Alice Archer'\"", {}),
    ("join_computed", "TrialStats * Filter & 'n_fast > 0'", {}),
    ("join_unchecked", "Subject.proj(idx='subject_id').join(Session.proj(idx='session_idx'), semantic_check=False)", {}),
    ("restrict_unchecked", "Subject.proj(idx='subject_id').restrict(Session.proj(idx='session_idx'), semantic_check=False)", {}),
    ("proj_keep", "Subject.proj('sex')", {}),
    ("proj_key_only", "Session.proj()", {}),
    ("proj_rename", "Subject.proj('sex', kind='species')", {}),
    ("proj_rename_pk", "Subject.proj(animal='subject_id')", {}),
    ("proj_computed", "Session.proj(duration_h='duration / 60')", {}),
    ("proj_all_computed", "Session.proj(..., double_dur='duration * 2')", {}),
    ("proj_exclude", "Subject.proj(..., '-notes', '-dob')", {}),
    ("proj_then_restrict", "Session.proj(d='duration') & 'd < 30'", {}),
    ("aggr_count", "Subject.aggr(Session, n='count(*)')", {}),
    ("aggr_count_avg", "Subject.aggr(Session, n='count(*)', avg_dur='avg(duration)', last='max(session_date)')", {}),
    ("aggr_exclude_nonmatching", "Subject.aggr(Session, n='count(*)', exclude_nonmatching=True)", {}),
    ("aggr_part", "Session.aggr(Session.Trial, n='count(*)', n_rt='count(rt)', best='min(rt)')", {}),
    ("aggr_restricted", "Subject.aggr(Session, n='count(*)') & 'n > 1'", {}),
    ("aggr_renamed", "User.aggr(Session.proj('duration', user_name='owner'), n='count(*)', total='sum(duration)')", {}),
    ("aggr_of_join", "Species.aggr(Subject * Session, n='count(*)', longest='max(duration)')", {}),
    ("u_distinct", "dj.U('species') & Subject", {}),
    ("u_distinct_two", "dj.U('species', 'sex') & Subject", {}),
    ("u_distinct_join", "dj.U('species', 'owner') & (Subject * Session)", {}),
    ("u_grouped_aggr", "dj.U('species').aggr(Subject, n='count(*)', mean_w='avg(weight)')", {}),
    ("u_grouped_aggr_join", "dj.U('owner', 'sex').aggr(Subject * Session, n='count(*)')", {}),
    ("u_total", "dj.U().aggr(Session, n='count(*)', total='sum(duration)')", {}),
    ("u_total_restricted", "dj.U().aggr(Session.Trial & \"outcome = 'hit'\", n='count(*)')", {}),
    ("union_outer", "(Session & 'duration > 45').proj('rig') + (Session & {'owner': 'alice'}).proj('owner')", {}),
    ("union_proj", "(Session & 'duration > 45').proj() + (Session & {'owner': 'alice'}).proj()", {}),
    ("top_plain", "Subject & dj.Top(3, 'weight DESC')", {}),
    # DataJoint 2.3.5 drops a Top whose restricted table is a join operand as it stands
    # (`Session * (Subject & dj.Top(2))` joins every subject); a further restriction makes it a
    # subquery, where the Top keeps its meaning, as it always does in dj-rs.
    ("top_in_join", "Session * (Subject & dj.Top(2, 'subject_id DESC') & 'weight > 0')", {}),
    # The further restriction also keeps DataJoint's SQL off MariaDB's "LIMIT & IN subquery"
    # limitation (DataJoint 2.3.5 fails there without it; dj-rs does not).
    ("top_in_semijoin", "Session.Trial & (Session & dj.Top(3, ['duration DESC', 'subject_id', 'session_idx']) & 'duration > 0')", {}),
    ("top_offset", "Session & dj.Top(4, ['duration DESC', 'subject_id', 'session_idx'], offset=2)", {}),
    ("top_aggr", "Subject.aggr(Session, n='count(*)') & dj.Top(3, ['n DESC', 'subject_id'])", {}),
    ("ordered_fetch", "Session * Subject", {"order_by": ["duration DESC", "subject_id", "session_idx"], "limit": 5}),
    ("ordered_fetch_offset", "Subject", {"order_by": ["dob"], "limit": 4, "offset": 3}),
    ("extend", "Session.extend(SessionNote)", {}),
    # DataJoint 2.3.5 moves a restriction of the right operand of `extend` into the outer WHERE
    # (`Session.Trial.extend(Subject & "sex = 'F'")` keeps only female subjects' trials, an inner
    # join); a right operand of two tables is a subquery there, so the left join keeps its
    # meaning, which dj-rs always gives it.
    ("extend_restricted", "Session.Trial.extend(Subject * Species & \"sex = 'F'\")", {}),
    ("err_join_lineage", "Subject * Filter.proj(species='filter_name')", {}),
    ("err_join_lineage_key", "Subject.proj(idx='subject_id') * Session.proj(idx='session_idx')", {}),
    ("err_union_shared_secondary", "(Subject & 'subject_id < 3') + (Subject & 'subject_id > 10')", {}),
    ("err_restrict_lineage", "Subject & Filter.proj(species='filter_name')", {}),
    ("err_proj_unknown", "Subject.proj('no_such_attribute')", {}),
    ("err_union_incompatible", "Subject + Session", {}),
    ("err_extend_not_determined", "Subject.extend(Session)", {}),
    ("err_aggr_bad_expression", "Subject.aggr(Session, n='no_such_function(duration)')", {}),
    ("err_restrict_unknown_attr", "Subject & 'no_such_attribute > 1'", {}),
]


def as_json(v):
    """A fetched value in the corpus's JSON convention (module docstring)."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, decimal.Decimal):
        return {"$dec": str(v)}
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, datetime.date):
        return v.isoformat()
    raise TypeError(f"no JSON form for {type(v)}: {v!r}")


def evaluate(tables, expr, opts):
    """Evaluate one corpus entry: its rows and heading, or the error it raised."""
    try:
        q = eval(expr, {"dj": dj, **tables})  # noqa: S307 (the corpus is this file's own text)
        if isinstance(q, type):
            q = q()
        names = list(q.heading.names)
        pk = list(q.primary_key)
        rows = q.to_dicts(order_by=opts.get("order_by"), limit=opts.get("limit"), offset=opts.get("offset"))
    except Exception as e:  # every failure is a result to compare: the Rust side must fail too
        return {"error": f"{type(e).__name__}: {e}"}
    for r in rows:
        if list(r) != names:
            raise AssertionError(f"{expr}: row attributes {list(r)} differ from the heading {names}")
    return {"attributes": names, "primary_key": pk,
            "rows": [[as_json(r[n]) for n in names] for r in rows]}


def main():
    mode, url, name = sys.argv[1], sys.argv[2], sys.argv[3]
    _, conn = configure(url)
    if mode == "drop":
        dj.Schema(name, connection=conn, create_schema=False).drop(prompt=False)
        return
    if mode != "setup":
        sys.exit(f"unknown mode {mode}")
    schema = dj.Schema(name, connection=conn)
    tables = declare(schema)
    fill(tables)
    out = {}
    for qid, expr, opts in CORPUS:
        if qid in out:
            sys.exit(f"duplicate query id {qid}")
        out[qid] = {"python": expr, "ordered": "order_by" in opts, **evaluate(tables, expr, opts)}
    with open(sys.argv[4], "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
