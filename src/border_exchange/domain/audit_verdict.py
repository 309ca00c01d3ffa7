"""The auditor's verdict over a replayed period, computed from records alone (no I/O, no router).

The inputs are the Kafka records an auditor read: every audit chain partition,
the outbox partitions they audit, the partner feeds and the quarantine. The
``Replay`` accumulator takes them as ``LogRecord`` values and ``Replay.verdict``
checks, without trusting the router:

- each chain links (``prev_hash`` is the chain hash of the record before, ``seq``
  contiguous) and every checkpoint verifies with a hub key valid when it was written;
  a deleted, inserted, reordered or altered record is located;
- every outbox record in the period has exactly one DECISION or QUARANTINE record,
  and every such record names an outbox record that exists and says what it holds;
- every decision re-evaluates to the same outcomes under the agreement set it names
  (looked up by digest), at its time, with the history it recorded;
- every delivery has exactly one partner-feed copy with the permitted sections, and
  every feed record is such a copy; every origin signature verifies on every copy;
- likewise every hit report or acknowledgement delivered has exactly one copy in its
  recipient's hit topic, and every record there is such a copy (``audit_hit_copies``).

Signatures: a message's outbox copy is verified once, in full (``verify_trusted``).
A feed copy is accepted when its header, section names, section digests and signature
are byte-identical to the verified outbox copy and each section it carries matches
its digest: the signing input of a redacted copy is the same bytes as the outbox
copy's, so this is the same check as verifying the copy's signature again. A feed
copy whose outbox copy was not replayed is verified in full.

The parts it uses live beside it: the values in ``audit_values``, the chain checks in
``audit_chain``, the re-evaluation in ``audit_reevaluation``, the feed copies' bytes in
``audit_splice``. What stays here, some 700 lines, is the one pass over a period that
ties them together: its cross-checks share that pass's state (the decision of each
message, the copy each delivery expects, the verified outbox copies, the signature
thread's pending checks), which more modules would only hand back and forth.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, Final

from border_exchange.domain.agreements import AgreementSet
from border_exchange.domain.audit import AuditKind, header_fields
from border_exchange.domain.audit_chain import ChainCheck, verify_chain
from border_exchange.domain.audit_gap import ChainStart
from border_exchange.domain.audit_hit_copies import HitCopies
from border_exchange.domain.audit_reevaluation import Reevaluator
from border_exchange.domain.audit_splice import Splice, copy_problem, splice_of
from border_exchange.domain.audit_values import (
    AUDIT_PREFIX,
    AuditEntry,
    Disclosure,
    LogRecord,
    Stats,
    Verdict,
    Violation,
    ViolationCode,
    Window,
)
from border_exchange.domain.encoding import decode_envelope, decode_envelope_split, decode_record
from border_exchange.domain.envelope import Envelope, Header
from border_exchange.domain.hits import verify_ack, verify_report
from border_exchange.domain.naming import parse_feed_topic, parse_outbox_topic
from border_exchange.domain.partitioning import expected_partition
from border_exchange.domain.signature_batch import SignatureChecks, signature_checks
from border_exchange.domain.signing import bad_signature, signed_message, verify_trusted
from border_exchange.domain.trust import TrustStore
from border_exchange.domain.trust_timeline import TrustTimeline, as_timeline
from border_exchange.errors import BorderExchangeError, DecodeError

_HEADER_FIELDS: Final = (
    "message_id",
    "alert_id",
    "version",
    "origin",
    "alert_type",
    "operation",
    "handling_code",
    "action_on_hit",
    "issued_at",
    "expires_at",
)


_RECORDED_HEADER: Final = itemgetter(*_HEADER_FIELDS)
_HITS: Final = frozenset((AuditKind.HIT_REPORT, AuditKind.HIT_ACK))
_DECIDING: Final = frozenset((AuditKind.DECISION, AuditKind.QUARANTINE, *_HITS))
"""Audit records that decide one outbox record (a checkpoint decides none)."""


def _differing_fields(
    record: Mapping[str, Any], header: Header, present: frozenset[str]
) -> list[str]:
    """The fields (and ``sections``) in which an audit record does not describe a message."""
    actual = (
        header.message_id,
        header.alert_id,
        header.version,
        header.origin,
        header.alert_type,  # codes compare equal to their text
        header.operation,
        header.handling_code,
        header.action_on_hit,
        header.issued_at,
        header.expires_at,
    )
    try:
        same = _RECORDED_HEADER(record) == actual
    except KeyError:
        same = False
    differing = []
    if not same:
        fields = header_fields(header)
        differing = [name for name in _HEADER_FIELDS if record.get(name) != fields[name]]
    if sorted(present) != list(record.get("sections") or ()):
        differing.append("sections")
    return differing


def _signature_problem(envelope: Envelope, trust: TrustStore) -> str | None:
    try:
        verify_trusted(envelope, trust)
    except BorderExchangeError as exc:
        return str(exc)
    return None


_Expected = tuple[frozenset[str], AuditEntry, bytes | None]
"""A delivery expected in a feed: the permitted sections, the decision, and the exact bytes of
the permitted copy when the outbox copy verified (a plain tuple: one is built per delivery)."""


class Replay:
    """Collects what an auditor read of one period and computes the verdict; does no I/O."""

    def __init__(
        self,
        window: Window,
        trust: TrustStore | TrustTimeline,
        agreement_sets: Mapping[str, AgreementSet],
    ) -> None:
        self.window = window
        self.trust = as_timeline(trust)
        """The trust store in force at each time (``domain.trust_timeline``): each record is
        checked under the store in force when the router decided it."""
        self.reevaluator = Reevaluator(agreement_sets, self.trust)
        self._chains: dict[tuple[str, int], ChainCheck] = {}
        self._outbox: dict[tuple[str, int], dict[int, LogRecord]] = {}
        self._feeds: list[LogRecord] = []
        self._hits: list[LogRecord] = []
        self._quarantine: list[LogRecord] | None = None
        self._notes: list[str] = []
        self._retained: dict[tuple[str, int], tuple[int, datetime | None]] = {}
        self._truncated: set[str] = set()
        """Origins of which a chain lost its start."""

    def add_chain(
        self,
        topic: str,
        partition: int,
        logs: Sequence[LogRecord],
        start: ChainStart | None = None,
    ) -> ChainCheck:
        """Add one audit partition's records, in offset order, and check its chain.

        ``start`` (where the partition's log begins) locates records deleted at its start.
        """
        check = verify_chain(topic, partition, logs, self.trust, start)
        if start is not None and start.truncated:
            self._truncated.add(topic.removeprefix(AUDIT_PREFIX))
        self._chains[(topic, partition)] = check
        return check

    def add_outbox(self, topic: str, partition: int, logs: Iterable[LogRecord]) -> None:
        """Add the outbox records read of one partition."""
        self._outbox.setdefault((topic, partition), {}).update((log.offset, log) for log in logs)

    def add_retained(
        self, topic: str, partition: int, first_offset: int, first_time: datetime | None
    ) -> None:
        """Where a time-retained partition starts now: its first offset and that record's
        time (None when it holds nothing). Records before were deleted under retention:
        lawfully erased, not missing."""
        self._retained[(topic, partition)] = (first_offset, first_time)

    def add_feed(self, logs: Iterable[LogRecord]) -> None:
        """Add partner-feed records."""
        self._feeds.extend(logs)

    def add_hits(self, logs: Iterable[LogRecord]) -> None:
        """Add records of the hit topics (``bx.<P>.hits``)."""
        self._hits.extend(logs)

    def add_quarantine(self, logs: Iterable[LogRecord]) -> None:
        """Add quarantine records (without them, quarantines are not cross-checked)."""
        if self._quarantine is None:
            self._quarantine = []
        self._quarantine.extend(logs)

    def note(self, text: str) -> None:
        """Record something the verdict assumed or could not check."""
        self._notes.append(text)

    def verdict(self) -> Verdict:
        """Check everything added and return the verdict."""
        return _Verdict(self).run()


class _Verdict:
    """One run of the cross-checks; split out of ``Replay`` to keep each step small."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.window = replay.window
        self.trust = replay.trust
        self.stats = Stats()
        self.violations: list[Violation] = []
        self.notes: list[str] = list(replay._notes)
        self.decisions: dict[tuple[str, str], tuple[AuditEntry, bool]] = {}
        self.expected: dict[tuple[str, str, str], _Expected] = {}
        self.verified: dict[tuple[str, str], LogRecord] = {}
        """Per message: the outbox record whose copy is taken as verified (its bytes only)."""
        self.by_source: dict[bytes, tuple[str, str]] = {}
        self.quarantine_expected: dict[tuple[str, int, int], AuditEntry] = {}
        self.quarantine_audited: set[tuple[str, int, int]] = set()
        self.origins: set[str] = set()
        self.checks: SignatureChecks[tuple[str, str, LogRecord]]
        self.hit_copies = HitCopies(self.window, self.trust)

    def run(self) -> Verdict:
        chains = []
        with signature_checks() as self.checks:
            for (topic, partition), check in sorted(self.replay._chains.items()):
                self.violations.extend(check.violations)
                chains.append(check.summary)
                self.stats.audit_records += len(check.entries)
                self.stats.checkpoints += check.summary.checkpoints
                self._chain(topic, partition, check)
            self._settle_signatures()
        self._feeds()
        self.violations.extend(
            self.hit_copies.check(self.replay._hits, self.origins, self._erased_copy, self.stats)
        )
        self._quarantine()
        self.violations.sort(key=lambda v: (v.topic, v.partition, v.offset, v.code.value))
        return Verdict(
            self.window, tuple(self.violations), self.stats, tuple(chains), tuple(self.notes)
        )

    def _add(self, code: ViolationCode, log: LogRecord, detail: str) -> None:
        self.violations.append(Violation(code, log.topic, log.partition, log.offset, detail))

    def _chain(self, topic: str, partition: int, check: ChainCheck) -> None:
        origin = topic.removeprefix(AUDIT_PREFIX)
        self.origins.add(origin)
        outbox_topic = f"bx.{origin}.outbox"
        outbox = self.replay._outbox.get((outbox_topic, partition))
        audited: dict[int, list[AuditEntry]] = defaultdict(list)
        in_window: list[AuditEntry] = []
        for entry in check.entries:
            kind = entry.kind
            if kind == AuditKind.CHECKPOINT:
                continue
            offset = entry.record.get("source_offset")
            if offset is None or kind not in _DECIDING:
                self._add(
                    ViolationCode.AUDIT_MALFORMED,
                    entry.log,
                    f"a {kind} record without a source offset",
                )
                continue
            audited[int(offset)].append(entry)
            if kind == AuditKind.QUARANTINE:
                self.quarantine_audited.add((outbox_topic, partition, int(offset)))
            if entry.recorded_at in self.window:
                in_window.append(entry)
        for entries in audited.values():
            for extra in entries[1:]:
                if extra.recorded_at in self.window or entries[0].recorded_at in self.window:
                    self._add(
                        ViolationCode.DUPLICATE_AUDIT,
                        extra.log,
                        f"outbox offset {extra.record['source_offset']} is already audited "
                        f"at offset {entries[0].log.offset}",
                    )
        if outbox is None:
            if in_window:
                self.notes.append(f"outbox {outbox_topic}/{partition} not replayed")
        else:
            self._coverage(outbox_topic, partition, outbox, audited, in_window)
        self._decisions(outbox_topic, partition, outbox, check, set(map(id, in_window)))

    def _coverage(
        self,
        outbox_topic: str,
        partition: int,
        outbox: Mapping[int, LogRecord],
        audited: Mapping[int, list[AuditEntry]],
        in_window: Sequence[AuditEntry],
    ) -> None:
        self.stats.outbox_records += sum(
            1 for log in outbox.values() if log.offset in audited or log.timestamp in self.window
        )
        offsets = [int(e.record["source_offset"]) for e in in_window]
        low, high = (min(offsets), max(offsets)) if offsets else (None, None)
        for offset, log in sorted(outbox.items()):
            if offset in audited:
                continue
            if (low is not None and high is not None and low <= offset <= high) or (
                log.timestamp in self.window
            ):
                self._add(
                    ViolationCode.MISSING_AUDIT,
                    log,
                    f"no DECISION or QUARANTINE record of {outbox_topic}/{partition} "
                    f"offset {offset}",
                )
        first = self.replay._retained.get((outbox_topic, partition), (0, None))[0]
        for entry in in_window:
            offset = int(entry.record["source_offset"])
            if offset not in outbox and offset < first:
                self.stats.erased_outbox += 1
            elif offset not in outbox:
                self._add(
                    ViolationCode.AUDIT_WITHOUT_SOURCE,
                    entry.log,
                    f"audits {outbox_topic}/{partition} offset {offset}, "
                    "which holds no committed record",
                )

    def _decisions(
        self,
        outbox_topic: str,
        partition: int,
        outbox: Mapping[int, LogRecord] | None,
        check: ChainCheck,
        in_window: Collection[int],
    ) -> None:
        owner = parse_outbox_topic(outbox_topic) or ""
        history: dict[str, set[str]] = defaultdict(set)
        complete = check.summary.from_genesis
        if not complete and in_window:
            self.notes.append(
                f"chain {check.summary.chain} replayed from seq {check.summary.first_seq}: "
                "earlier recipients before it are taken as recorded"
            )
        for entry in check.entries:
            record = entry.record
            kind = entry.kind
            if kind == AuditKind.DECISION:
                alert_id = str(record.get("alert_id"))
                seen = history[alert_id]
                if id(entry) in in_window:
                    self._decision(entry, outbox_topic, partition, owner, outbox, seen, complete)
                else:
                    key = (str(record.get("origin")), str(record.get("message_id")))
                    self.decisions.setdefault(key, (entry, False))
                for outcome in record.get("outcomes") or ():
                    if outcome["delivered"]:
                        seen.add(str(outcome["participant"]))
            elif kind in _HITS and id(entry) in in_window:
                self._hit(entry, owner, outbox)
            elif kind in _HITS:
                self.hit_copies.expect(entry, None, inside=False)
            elif kind == AuditKind.QUARANTINE and id(entry) in in_window:
                self.stats.quarantined += 1
                self.stats.quarantine_reasons[owner][str(record.get("quarantine_reason"))] += 1
                offset = int(record["source_offset"])
                self.quarantine_expected[(outbox_topic, partition, offset)] = entry

    def _hit(self, entry: AuditEntry, owner: str, outbox: Mapping[int, LogRecord] | None) -> None:
        """A delivered hit report or acknowledgement: counted; its outbox record must be one,
        by the outbox's owner, signed (a report by its post's key), to the one recipient
        the record names (a report: the alert's origin; an acknowledgement: the reporter)."""
        record = entry.record
        report = entry.kind == AuditKind.HIT_REPORT
        if report:
            self.stats.hit_reports += 1
        else:
            self.stats.hit_acks += 1
        log = None if outbox is None else outbox.get(int(record["source_offset"]))
        if log is None:
            # Not replayed, or erased under retention (counted by _coverage): its copy is
            # checked by its own signature.
            self.hit_copies.expect(entry, None, inside=True)
            return
        recipients = [o["participant"] for o in record.get("outcomes") or () if o["delivered"]]
        try:
            if report:
                message = verify_report(log.value or b"", self.trust.at(entry.recorded_at))
                found = (message.hit_id, message.reporter, message.alert_origin)
            else:
                answer = verify_ack(log.value or b"", self.trust.at(entry.recorded_at))
                found = (answer.ack_id, answer.origin, answer.reporter)
        except BorderExchangeError as exc:
            self._add(ViolationCode.SIGNATURE_INVALID, entry.log, f"{entry.kind}: {exc}")
            self.hit_copies.expect(entry, None, inside=True)
            return
        self.stats.signatures_verified += 1
        self.hit_copies.expect(entry, log.value, inside=True)  # its copy: these very bytes
        recorded = (record.get("message_id"), owner, recipients[0] if recipients else None)
        if found != recorded or len(recipients) != 1:
            self._add(
                ViolationCode.AUDIT_MISMATCH,
                entry.log,
                f"{entry.kind} records {recorded} (recipients {recipients}); the outbox "
                f"record is {found}",
            )

    def _decision(
        self,
        entry: AuditEntry,
        outbox_topic: str,
        partition: int,
        owner: str,
        outbox: Mapping[int, LogRecord] | None,
        seen: set[str],
        complete: bool,
    ) -> None:
        record = entry.record
        self.stats.decisions += 1
        origin = str(record.get("origin"))
        message_id = str(record.get("message_id"))
        message = (origin, message_id)
        self.decisions[message] = (entry, True)
        digest = str(record.get("agreement_set"))
        label, count = self.stats.agreement_sets.get(
            digest, (str(record.get("agreement_label")), 0)
        )
        self.stats.agreement_sets[digest] = (label, count + 1)
        if origin != owner:
            self._add(
                ViolationCode.ORIGIN_MISMATCH,
                entry.log,
                f"message {message_id} claims origin {origin} in the outbox of {owner} "
                "and was decided instead of quarantined",
            )
        source = None if outbox is None else outbox.get(int(record["source_offset"]))
        splice = None
        if source is not None:
            splice = self._outbox_copy(entry, source, origin, message_id)
            self.by_source[f"{outbox_topic}/{partition}/{source.offset}".encode()] = message
        verified = self.verified.get(message)
        if verified is None:
            splice = None
        elif splice is None or verified is not source:  # verified by an earlier decision
            splice = splice_of(verified)
        try:
            problems = self.replay.reevaluator.differences(record)
        except (ValueError, KeyError, TypeError, BorderExchangeError) as exc:
            self._add(ViolationCode.AUDIT_MALFORMED, entry.log, f"cannot re-evaluate: {exc}")
            problems = []
        if problems is None:
            self._add(
                ViolationCode.AGREEMENT_SET_UNKNOWN,
                entry.log,
                f"agreement set {digest} ({record.get('agreement_label')}) cannot be retrieved",
            )
        elif problems:
            self._add(ViolationCode.DECISION_MISMATCH, entry.log, "; ".join(problems))
        unsigned = self.replay.reevaluator.unsigned_deliveries(record)
        if unsigned:
            self._add(ViolationCode.AGREEMENT_NOT_SIGNED, entry.log, "; ".join(unsigned))
        recorded = set(record.get("earlier_recipients") or ())
        if (complete and recorded != seen) or not seen <= recorded:
            self._add(
                ViolationCode.HISTORY_MISMATCH,
                entry.log,
                f"alert {record.get('alert_id')}: recorded earlier recipients "
                f"{sorted(recorded)}, the chain shows {sorted(seen)}",
            )
        alert_type = str(record.get("alert_type"))
        for outcome in record.get("outcomes") or ():
            recipient = str(outcome["participant"])
            if recipient == origin:
                continue
            if outcome["delivered"]:
                self.stats.delivered[(origin, recipient)][alert_type] += 1
                sections = frozenset(outcome["sections"])
                value = None if splice is None else splice.redacted(sections)
                self.expected[(recipient, origin, message_id)] = (sections, entry, value)
            else:
                self.stats.denied[(origin, recipient)][str(outcome["reason"])] += 1

    def _outbox_copy(
        self, entry: AuditEntry, source: LogRecord, origin: str, message_id: str
    ) -> Splice | None:
        """Check the outbox copy a decision names; the copy ready to redact, when it is taken.

        Only the bytes are kept (``verified``): the decoded copy is needed again only on
        the rare paths (a failed signature, a feed copy that is not byte-identical), where
        it is decoded again.
        """
        try:
            envelope, sections_at = decode_envelope_split(source.value)
        except DecodeError as exc:
            self._add(
                ViolationCode.AUDIT_MISMATCH,
                source,
                f"decided at audit offset {entry.log.offset} but is no envelope: {exc}",
            )
            return None
        header = envelope.header
        present = envelope.present_sections
        differing = _differing_fields(entry.record, header, present)
        if differing:
            self._add(
                ViolationCode.AUDIT_MISMATCH,
                entry.log,
                f"describes another message than outbox offset {source.offset}: "
                + ", ".join(differing),
            )
        self.stats.signatures_verified += 1
        try:
            store = self.trust.at(entry.recorded_at)  # in force when it was decided
            key = store.key_for(header.origin, header.key_id, header.issued_at)
            signed = signed_message(envelope, key)
        except BorderExchangeError as exc:
            self._add(ViolationCode.SIGNATURE_INVALID, source, f"outbox copy: {exc}")
            return None
        # Taken as verified until the signature check, done on the side, says otherwise
        # (``_settle_signatures``, before any feed copy is compared with it).
        self.verified[(origin, message_id)] = source
        self.checks.add((origin, message_id, source), signed, key.raw)
        return Splice.of(source.value, envelope, sections_at, present)

    def _settle_signatures(self) -> None:
        """Withdraw every outbox copy whose signature failed, and what was expected of it."""
        failed = set()
        for origin, message_id, source in self.checks.failed():
            error = bad_signature(decode_envelope(source.value).header)
            self._add(ViolationCode.SIGNATURE_INVALID, source, f"outbox copy: {error}")
            if self.verified.get((origin, message_id)) is source:
                del self.verified[(origin, message_id)]
                failed.add((origin, message_id))
        if failed:
            for key, (sections, entry, value) in self.expected.items():
                if key[1:] in failed and value is not None:
                    self.expected[key] = (sections, entry, None)

    def _feeds(self) -> None:
        matched: dict[tuple[str, str, str], LogRecord] = {}
        disclosed: set[tuple[str, str, str]] = set()
        """Deliveries made, but only in a copy carrying withheld sections."""
        topics: dict[str, tuple[str, str] | None] = {}
        for log in self.replay._feeds:
            try:
                parsed = topics[log.topic]
            except KeyError:
                parsed = topics[log.topic] = parse_feed_topic(log.topic)
            if parsed is None:
                continue
            recipient, origin = parsed
            self.stats.feed_records += 1
            if self._permitted_copy(log, recipient, origin, matched):
                continue
            try:
                envelope = decode_envelope(log.value)
            except DecodeError as exc:
                if log.timestamp in self.window:
                    self._add(ViolationCode.FEED_UNAUTHORISED, log, f"not an envelope: {exc}")
                continue
            message_id = envelope.header.message_id
            found = self.decisions.get((origin, message_id))
            if found is None:
                if log.timestamp in self.window:
                    self._add(
                        ViolationCode.FEED_UNAUTHORISED,
                        log,
                        f"message {message_id} of {origin}: no decision of the router delivers it"
                        + (
                            f" (audit records of {origin} were deleted, see AUDIT_DELETED: "
                            "its decision may have been among them)"
                            if origin in self.replay._truncated
                            else ""
                        ),
                    )
                continue
            entry, inside = found
            if not inside:
                continue
            key = (recipient, origin, message_id)
            expected = self.expected.get(key)
            if expected is None:
                self._add(
                    ViolationCode.FEED_UNAUTHORISED,
                    log,
                    f"message {message_id} of {origin}: the decision at "
                    f"{entry.log.topic}/{entry.log.partition}/{entry.log.offset} "
                    f"does not deliver it to {recipient}",
                )
                continue
            present = envelope.present_sections
            withheld = present - expected[0]
            if withheld:
                # A disclosure, not a second delivery: the permitted copy may still be there.
                self._add(
                    ViolationCode.FEED_SECTION_DISCLOSED,
                    log,
                    f"message {message_id} of {origin} carries section(s) "
                    f"{', '.join(sorted(withheld))} that the decision at "
                    f"{entry.log.topic}/{entry.log.partition}/{entry.log.offset} "
                    f"withheld from {recipient}",
                )
                disclosed.add(key)
                continue
            if key in matched:
                self._add(
                    ViolationCode.FEED_DUPLICATE,
                    log,
                    f"message {message_id} already delivered at offset {matched[key].offset}",
                )
                continue
            matched[key] = log
            if present != expected[0]:
                self._add(
                    ViolationCode.FEED_SECTIONS_MISMATCH,
                    log,
                    f"message {message_id} carries [{', '.join(sorted(present))}], "
                    f"permitted [{', '.join(sorted(expected[0]))}]",
                )
            self._feed_signature(log, envelope, origin, message_id)
        for key, (_, entry, _) in self.expected.items():
            if key not in matched and key not in disclosed:
                recipient, origin, message_id = key
                if self._erased_copy(f"bx.{recipient}.from.{origin}", entry):
                    self.stats.erased_feed += 1
                    continue
                self._add(
                    ViolationCode.FEED_MISSING,
                    entry.log,
                    f"message {message_id} delivered to {recipient} has no record in "
                    f"bx.{recipient}.from.{origin}",
                )

    def _erased_copy(self, feed: str, entry: AuditEntry) -> bool:
        """Whether the copy ``entry`` delivered to ``feed`` was deleted under retention: its
        partition (the alert id's, as the router chose it) now starts after the decision."""
        partitions = sum(1 for topic, _ in self.replay._retained if topic == feed)
        partition = expected_partition(str(entry.record.get("alert_id")).encode(), partitions)
        if partition is None:
            return False
        first_offset, first_time = self.replay._retained[(feed, partition)]
        if first_time is None:
            return first_offset > 0  # emptied by retention
        return entry.recorded_at < first_time

    def _permitted_copy(
        self,
        log: LogRecord,
        recipient: str,
        origin: str,
        matched: dict[tuple[str, str, str], LogRecord],
    ) -> bool:
        """Whether ``log`` is byte for byte the permitted copy of a verified message.

        The ``bx-source`` header only says where to look; the byte comparison decides.
        """
        hint = log.header("bx-source")
        found = None if hint is None else self.by_source.get(hint)
        if found is None or found[0] != origin:
            return False
        key = (recipient, origin, found[1])
        expected = self.expected.get(key)
        if expected is None or expected[2] is None or key in matched:
            return False
        if log.value != expected[2]:
            return False
        matched[key] = log
        self.stats.copies_checked += 1
        return True

    def _feed_signature(
        self, log: LogRecord, envelope: Envelope, origin: str, message_id: str
    ) -> None:
        verified = self.verified.get((origin, message_id))
        if verified is not None:
            self.stats.copies_checked += 1
            problem = copy_problem(envelope, decode_envelope(verified.value))
        else:
            self.stats.signatures_verified += 1
            problem = _signature_problem(envelope, self.trust.at(log.timestamp))
        if problem is not None:
            self._add(ViolationCode.SIGNATURE_INVALID, log, f"feed copy: {problem}")

    def _quarantined_bytes(
        self, log: LogRecord, record: Mapping[str, Any], source: tuple[str, int, int]
    ) -> None:
        """A quarantine record keeps a prefix of the value: its length and hash must be
        those of the outbox record it names (when that was replayed)."""
        digest = record.get("original_value_sha256")
        original = self.replay._outbox.get(source[:2], {}).get(source[2])
        if digest is None or original is None:
            return
        value = original.value or b""
        if hashlib.sha256(value).digest() != digest or len(value) != record.get(
            "original_value_length"
        ):
            self._add(
                ViolationCode.QUARANTINE_MISMATCH,
                log,
                f"quarantine of {source[0]}/{source[1]} offset {source[2]} names other bytes "
                f"than the outbox record ({record.get('original_value_length')} bytes recorded, "
                f"{len(value)} in the outbox)",
            )

    def _quarantine(self) -> None:
        logs = self.replay._quarantine
        if logs is None:
            if self.quarantine_expected:
                self.notes.append("quarantine topic not replayed")
            return
        found: set[tuple[str, int, int]] = set()
        for log in logs:
            try:
                schema, record = decode_record(log.value)
            except DecodeError as exc:
                self._add(ViolationCode.QUARANTINE_UNAUDITED, log, f"malformed: {exc}")
                continue
            if schema != "bx.QuarantineRecord":
                self._add(ViolationCode.QUARANTINE_UNAUDITED, log, f"a {schema} record")
                continue
            source = (
                str(record["source_topic"]),
                int(record["source_partition"]),
                int(record["source_offset"]),
            )
            found.add(source)
            self._quarantined_bytes(log, record, source)
            owner = parse_outbox_topic(source[0])
            if (
                owner in self.origins
                and source not in self.quarantine_audited
                and log.timestamp in self.window
            ):
                self._add(
                    ViolationCode.QUARANTINE_UNAUDITED,
                    log,
                    f"quarantine of {source[0]}/{source[1]} offset {source[2]} "
                    "has no QUARANTINE audit record",
                )
        for source, entry in self.quarantine_expected.items():
            if source not in found:
                self._add(
                    ViolationCode.QUARANTINE_MISSING,
                    entry.log,
                    f"quarantine of {source[0]}/{source[1]} offset {source[2]} "
                    "is not in the quarantine topic",
                )


def disclosures(entries: Iterable[AuditEntry], window: Window, origin: str) -> list[Disclosure]:
    """Every delivery of ``origin``'s alerts decided in ``window``: to whom, what, under what."""
    found = []
    for entry in entries:
        record = entry.record
        if entry.kind in _HITS and entry.recorded_at in window:
            found.extend(_hit_disclosure(entry, origin))
            continue
        if entry.kind != AuditKind.DECISION or entry.recorded_at not in window:
            continue
        if record.get("origin") != origin:
            continue
        for outcome in record.get("outcomes") or ():
            if not outcome["delivered"] or outcome["participant"] == origin:
                continue
            found.append(
                Disclosure(
                    message_id=str(record["message_id"]),
                    alert_id=str(record["alert_id"]),
                    version=int(record["version"]),
                    alert_type=str(record["alert_type"]),
                    operation=str(record["operation"]),
                    recipient=str(outcome["participant"]),
                    sections=tuple(outcome["sections"]),
                    agreement_id=outcome["agreement_id"],
                    basis=outcome["basis"],
                    agreement_set=str(record["agreement_set"]),
                    agreement_label=str(record["agreement_label"]),
                    recorded_at=entry.recorded_at,
                    audit_topic=entry.log.topic,
                    audit_partition=entry.log.partition,
                    audit_offset=entry.log.offset,
                )
            )
    return found


def _hit_disclosure(entry: AuditEntry, sender: str) -> list[Disclosure]:
    """A hit report ``sender`` sent (it tells the alert's origin where a person or a vehicle
    was found) or an acknowledgement it sent back, as a disclosure to its one recipient."""
    record = entry.record
    if record.get("origin") != sender:
        return []
    report = entry.kind == AuditKind.HIT_REPORT
    return [
        Disclosure(
            message_id=str(record["message_id"]),
            alert_id=str(record["alert_id"]),
            version=int(record["version"] or 0),
            alert_type=str(record.get("alert_type") or "-"),
            operation=str(entry.kind),
            recipient=str(outcome["participant"]),
            sections=("hit report: where, when, what was done, contact",)
            if report
            else ("acknowledgement: follow-up instructions",),
            agreement_id=None,
            basis=None,
            agreement_set="-",
            agreement_label="the hit procedure (to the alert's origin and back, no agreement)",
            recorded_at=entry.recorded_at,
            audit_topic=entry.log.topic,
            audit_partition=entry.log.partition,
            audit_offset=entry.log.offset,
        )
        for outcome in record.get("outcomes") or ()
        if outcome["delivered"]
    ]
