"""The public website's pages: server-rendered HTML over the read models.

Every page works without JavaScript, names the log index it reflects and takes ``as_of`` (a
log index, or an RFC 3339 UTC time) to show the record as it stood then. Unknown ids and
paths are HTML 404 pages, bad parameters HTML 400 pages.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.web.site import (
    STATUSES,
    PageError,
    Paging,
    View,
    clean_id,
    clean_int,
    clean_param,
    every,
    html_errors,
    not_found,
    public_base_url,
    render,
    url_segment,
)
from projections import search as search_view

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

AsOf = Annotated[str | None, Query()]
Text = Annotated[str | None, Query()]

# Home and strands ------------------------------------------------------------------------------


def _timeline(view: View, limit: int) -> list[dict[str, Any]]:
    """The latest entries, newest first, each with a description and a link."""
    items = []
    for item in view.models.timeline(as_of=view.at, limit=limit)["items"]:
        name, path = view.names.subject(item["subject_kind"], item["subject_id"])
        items.append({**item, "name": name, "href": view.link(path) if path else None})
    return items


@router.get("/")
@html_errors
def home(request: Request, as_of: AsOf = None) -> Response:
    view = View.open(request, as_of)
    proposals = list(view.names.proposals.values())
    by_strand = Counter((p["process_id"], p["strand_id"]) for p in proposals)
    by_status = Counter(p["status"] for p in proposals)
    return render(
        view,
        "home.html",
        processes=view.names.processes,
        by_strand=by_strand,
        by_status=[(s, by_status[s]) for s in STATUSES if by_status[s]],
        proposal_count=len(proposals),
        meeting_count=len(view.names.meetings),
        publication_count=len(view.names.publications),
        organisation_count=len(view.names.organisations),
        timeline=_timeline(view, 12),
    )


@router.get("/web/strands/{process_id}/{strand_id:path}")  # old strand ids may hold "/"
@html_errors
def strand(request: Request, process_id: str, strand_id: str, as_of: AsOf = None) -> Response:
    process_id = clean_id(process_id, "process")
    strand_id = clean_id(strand_id, "strand")
    view = View.open(request, as_of)
    process = view.models.process(process_id, view.at)
    if process is None:
        raise not_found("There is no process with that id at this point in the log.")
    found = next((s for s in process["strands"] if s["strand_id"] == strand_id), None)
    if found is None:
        raise not_found("This process has no strand with that id at this point in the log.")
    proposals = [
        p
        for p in every(view.models.proposals, as_of=view.at, strand_id=strand_id)
        if p["process_id"] == process_id
    ]
    meetings = [
        m
        for m in every(view.models.meetings, as_of=view.at, strand_id=strand_id)
        if m["process_id"] == process_id
    ]
    members = [
        m
        for m in every(view.models.memberships, as_of=view.at)
        if m["process_id"] == process_id and m["group"] == strand_id
    ]
    return render(
        view,
        "strand.html",
        process=process,
        strand=found,
        proposals=proposals,
        meetings=meetings,
        members=members,
    )


# Proposals -------------------------------------------------------------------------------------


@router.get("/web/proposals")
@html_errors
def proposals(
    request: Request,
    as_of: AsOf = None,
    q: Text = None,
    strand: Text = None,
    status: Text = None,
    cursor: Text = None,
) -> Response:
    view = View.open(request, as_of)
    q, strand, status = (
        clean_param(q, "q"),
        clean_param(strand, "strand"),
        clean_param(status, "status"),
    )
    paging = Paging(
        view, "search" if q else "proposals", {"q": q, "strand": strand, "status": status}
    )
    paging.start(cursor)
    hits: list[dict[str, Any]] = []
    if q:
        page = view.models.search(
            q, as_of=paging.at, limit=20, after=paging.after, kinds=["proposal"]
        )
        for hit in page["items"]:
            found = view.names.proposals.get(hit["ref_id"])
            if found is None:
                continue
            if strand is not None and found["strand_id"] != strand:
                continue
            if status is not None and found["status"] != status:
                continue
            hits.append({**found, "snippet": hit["snippet"]})
    else:
        page = view.models.proposals(
            as_of=paging.at, strand_id=strand, status=status, limit=50, after=paging.after
        )
        hits = list(page["items"])
    strands = [
        (s["strand_id"], s["title"]) for p in view.names.processes for s in p.get("strands", [])
    ]
    return render(
        view,
        "proposals.html",
        q=q,
        strand=strand,
        status=status,
        strands=strands,
        statuses=STATUSES,
        proposals=hits,
        next_link=paging.next_link(page),
        first_link=paging.first_link(),
    )


def _proposal(view: View, proposal_id: str) -> dict[str, Any]:
    found = view.models.proposal(proposal_id, view.at)
    if found is None:
        raise not_found("There is no proposal with that id at this point in the log.")
    return found


@router.get("/web/proposals/{proposal_id}")
@html_errors
def proposal(request: Request, proposal_id: str, as_of: AsOf = None) -> Response:
    proposal_id = clean_id(proposal_id, "proposal")
    view = View.open(request, as_of)
    found = _proposal(view, proposal_id)
    current = view.models.version(proposal_id, int(found["text_version"]), view.at)
    history = every(view.models.history, proposal_id, as_of=view.at)
    status_entry = next(
        (h for h in reversed(history) if h["type"] == "proposal.status_changed"), None
    )
    amendments = every(view.models.amendments, as_of=view.at, proposal_id=proposal_id)
    open_amendments = [
        a
        for a in amendments
        if a.get("incorporated_in") is None and (a.get("decision") in (None, "no_decision"))
    ]
    publications = every(view.models.publications, as_of=view.at, proposal_id=proposal_id)
    return render(
        view,
        "proposal.html",
        proposal=found,
        current=current,
        history=history,
        status_entry=status_entry,
        open_amendments=open_amendments,
        publications=publications,
        verify_indexes=[h["index"] for h in history],
        subject_id=proposal_id,
    )


def _diff(view: View, proposal_id: str, old: int, new: int) -> list[dict[str, Any]] | None:
    found = view.models.compare(proposal_id, old, new, view.at)
    return None if found is None else list(found["operations"])


@router.get("/web/proposals/{proposal_id}/history")
@html_errors
def proposal_history(request: Request, proposal_id: str, as_of: AsOf = None) -> Response:
    proposal_id = clean_id(proposal_id, "proposal")
    view = View.open(request, as_of)
    found = _proposal(view, proposal_id)
    versions = every(view.models.versions, proposal_id, as_of=view.at)
    numbers = {v["text_version"] for v in versions}
    for version in versions:
        number = version["text_version"]
        version["diff"] = (
            _diff(view, proposal_id, number - 1, number) if number - 1 in numbers else None
        )
    amendments = every(view.models.amendments, as_of=view.at, proposal_id=proposal_id)
    not_incorporated = [a for a in amendments if a.get("incorporated_in") is None]
    history = every(view.models.history, proposal_id, as_of=view.at)
    return render(
        view,
        "history.html",
        proposal=found,
        versions=list(reversed(versions)),
        not_incorporated=not_incorporated,
        history=history,
        verify_indexes=[h["index"] for h in history],
        subject_id=proposal_id,
    )


@router.get("/web/proposals/{proposal_id}/compare")
@html_errors
def compare(
    request: Request,
    proposal_id: str,
    as_of: AsOf = None,
    old: Annotated[str | None, Query(alias="from")] = None,
    new: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    proposal_id = clean_id(proposal_id, "proposal")
    view = View.open(request, as_of)
    found = _proposal(view, proposal_id)
    versions = every(view.models.versions, proposal_id, as_of=view.at)
    by_number = {v["text_version"]: v for v in versions}
    latest = int(found["text_version"])
    chosen_old = clean_int(old, "from")
    chosen_new = clean_int(new, "to")
    new_number = chosen_new if chosen_new is not None else latest
    old_number = chosen_old if chosen_old is not None else max(1, new_number - 1)
    for number in (old_number, new_number):
        if number not in by_number:
            raise not_found(f"This proposal has no version {number} at this point in the log.")
    diff = _diff(view, proposal_id, old_number, new_number)
    return render(
        view,
        "compare.html",
        proposal=found,
        versions=versions,
        old=by_number[old_number],
        new=by_number[new_number],
        diff=diff or [],
        verify_indexes=sorted(
            {by_number[old_number]["created_index"], by_number[new_number]["created_index"]}
        ),
        subject_id=proposal_id,
    )


# Meetings --------------------------------------------------------------------------------------


@router.get("/web/meetings")
@html_errors
def meetings(
    request: Request, as_of: AsOf = None, strand: Text = None, cursor: Text = None
) -> Response:
    view = View.open(request, as_of)
    strand = clean_param(strand, "strand")
    paging = Paging(view, "meetings", {"strand": strand})
    paging.start(cursor)
    page = view.models.meetings(as_of=paging.at, strand_id=strand, limit=50, after=paging.after)
    strands = [
        (s["strand_id"], s["title"]) for p in view.names.processes for s in p.get("strands", [])
    ]
    return render(
        view,
        "meetings.html",
        meetings=page["items"],
        strand=strand,
        strands=strands,
        next_link=paging.next_link(page),
        first_link=paging.first_link(),
    )


@router.get("/web/meetings/{meeting_id}")
@html_errors
def meeting(request: Request, meeting_id: str, as_of: AsOf = None) -> Response:
    meeting_id = clean_id(meeting_id, "meeting")
    view = View.open(request, as_of)
    found = view.models.meeting(meeting_id, view.at)
    if found is None:
        raise not_found("There is no meeting with that id at this point in the log.")
    amendments = [
        a
        for a in every(view.models.amendments, as_of=view.at)
        if meeting_id in (a.get("meeting_id"), a.get("decided_meeting"))
    ]
    revisions = [
        v
        for v in every(view.models.all_versions, as_of=view.at)
        if v.get("meeting_id") == meeting_id
    ]
    publications = [p for p in view.names.publications.values() if meeting_id in p["meeting_ids"]]
    indexes = [found["scheduled_index"], *(o["index"] for o in found["outcomes"])]
    return render(
        view,
        "meeting.html",
        meeting=found,
        attributed=found["disclosure"] == "on_record",
        amendments=amendments,
        revisions=revisions,
        publications=publications,
        verify_indexes=sorted(indexes),
        subject_id=meeting_id,
    )


# Publications ----------------------------------------------------------------------------------


@router.get("/web/publications")
@html_errors
def publications(
    request: Request, as_of: AsOf = None, proposal: Text = None, cursor: Text = None
) -> Response:
    view = View.open(request, as_of)
    proposal = clean_param(proposal, "proposal")
    paging = Paging(view, "publications", {"proposal": proposal})
    paging.start(cursor)
    page = view.models.publications(
        as_of=paging.at, proposal_id=proposal, limit=50, after=paging.after
    )
    return render(
        view,
        "publications.html",
        publications=page["items"],
        proposal=proposal,
        next_link=paging.next_link(page),
        first_link=paging.first_link(),
    )


@router.get("/web/publications/{publication_id}")
@html_errors
def publication(request: Request, publication_id: str, as_of: AsOf = None) -> Response:
    publication_id = clean_id(publication_id, "publication")
    view = View.open(request, as_of)
    found = view.models.publication(publication_id, view.at)
    if found is None:
        raise not_found("There is no publication with that id at this point in the log.")
    indexes = {found["published_index"], found["state_index"]}
    indexes |= {g["index"] for g in found["prerelease_grants"]}
    if found["released_index"] is not None:
        indexes.add(found["released_index"])
    return render(
        view,
        "publication.html",
        publication=found,
        verify_indexes=sorted(indexes),
        subject_id=publication_id,
    )


# Organisations ---------------------------------------------------------------------------------


@router.get("/web/organisations")
@html_errors
def organisations(
    request: Request, as_of: AsOf = None, kind: Text = None, cursor: Text = None
) -> Response:
    view = View.open(request, as_of)
    kind = clean_param(kind, "kind")
    paging = Paging(view, "organisations", {"kind": kind})
    paging.start(cursor)
    page = view.models.organisations(as_of=paging.at, org_kind=kind, limit=50, after=paging.after)
    return render(
        view,
        "organisations.html",
        organisations=page["items"],
        kind=kind,
        next_link=paging.next_link(page),
        first_link=paging.first_link(),
    )


@router.get("/web/organisations/{organisation_id}")
@html_errors
def organisation(request: Request, organisation_id: str, as_of: AsOf = None) -> Response:
    organisation_id = clean_id(organisation_id, "organisation")
    view = View.open(request, as_of)
    found = view.models.organisation(organisation_id, view.at)
    if found is None:
        raise not_found("There is no organisation with that id at this point in the log.")
    amendments = every(view.models.amendments, as_of=view.at)
    # What older entries attributed at a meeting that attributes no one is not shown.
    unattributed = view.names.unattributed
    proposed = [
        a
        for a in amendments
        if a.get("proposer_org") == organisation_id and not unattributed(a.get("meeting_id"))
    ]
    dissents = [
        a
        for a in amendments
        if organisation_id in (a.get("dissenting_orgs") or [])
        and not unattributed(a.get("decided_meeting"))
    ]
    sponsored = [p for p in view.names.proposals.values() if p["sponsor_org"] == organisation_id]
    return render(
        view,
        "organisation.html",
        organisation=found,
        proposed=proposed,
        dissents=dissents,
        sponsored=sponsored,
    )


# Search ----------------------------------------------------------------------------------------


def _hit_link(view: View, hit: dict[str, Any]) -> str:
    kind, ref, sub = hit["kind"], url_segment(hit["ref_id"]), hit["sub_id"]
    if kind == "proposal":
        return view.link(f"/web/proposals/{ref}")
    if kind == "amendment":
        return view.link(f"/web/proposals/{ref}/history") + f"#amendment-{sub}"
    if kind == "outcome":
        return view.link(f"/web/meetings/{ref}") + f"#outcome-{sub}"
    return view.link(f"/web/publications/{ref}")


@router.get("/web/search")
@html_errors
def search(request: Request, as_of: AsOf = None, q: Text = None, cursor: Text = None) -> Response:
    view = View.open(request, as_of)
    q = clean_param(q, "q")
    paging = Paging(view, "search", {"q": q})
    paging.start(cursor)
    hits: list[dict[str, Any]] = []
    next_link = None
    if q:
        page = view.models.search(
            q, as_of=paging.at, limit=20, after=paging.after, kinds=list(search_view.KINDS)
        )
        hits = [{**h, "href": _hit_link(view, h)} for h in page["items"]]
        next_link = paging.next_link(page)
    return render(view, "search.html", q=q, hits=hits, next_link=next_link)


# Audit -----------------------------------------------------------------------------------------


def _signers(note: str) -> list[str]:
    """The key names on a signed note's signature lines (for display only: the browser and
    ``ledger audit`` check the signatures themselves)."""
    _, _, signatures = note.rpartition("\n\n")
    return [line[2:].split(" ", 1)[0] for line in signatures.splitlines() if line.startswith("— ")]


@router.get("/web/audit")
@html_errors
def audit(request: Request, as_of: AsOf = None) -> Response:
    view = View.open(request, as_of)
    latest = view.reader.checkpoint()
    settings = request.app.state.settings
    signers = _signers(latest[2]) if latest is not None else []
    cosigners = [name for name in signers if name != settings.log_name]
    base = public_base_url(request)
    size = latest[0] if latest is not None else 0
    return render(
        view,
        "audit.html",
        checkpoint=latest[2] if latest is not None else None,
        checkpoint_size=size,
        witnesses=list(settings.witnesses),
        cosigners=cosigners,
        base_url=base,
        verify_indexes=[size - 1] if size else [],
        subject_id=None,
    )


# Anything else under /web/ ---------------------------------------------------------------------


@router.get("/web")
@router.get("/web/")
@html_errors
def web_root(request: Request) -> Response:  # noqa: ARG001
    raise PageError(404, "Page not found", "Start from the home page.")


@router.get("/web/{rest:path}")
@html_errors
def web_unknown(request: Request, rest: str) -> Response:  # noqa: ARG001
    raise not_found("If you typed the web address, check it is correct.")
