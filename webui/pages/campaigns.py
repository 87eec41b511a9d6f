"""Campaigns: rows from a file or typed in a table, defaults for all, every row checked before
anything starts; the batch followed row by row; scheduled campaigns paused, resumed, deleted."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import streamlit as st

from api.client import FacadeError
from spec.runs import SETTLED
from spec.service import BatchCheck
from webui.i18n import t
from webui.ui import error, facade, require_signin, role

require_signin()
st.title(t("nav.campaigns"))
creator = role() != "viewer"

upload = st.file_uploader(t("campaigns.upload"), key="campaign_file")
st.caption(t("campaigns.edit"))
table = st.data_editor(
    pd.DataFrame({"topic": [""], "script": [""]}),
    num_rows="dynamic",
    key="campaign_rows",
    width="stretch",
)
defaults_text = st.text_area(t("campaigns.defaults"), value="{}", key="campaign_defaults")
name = st.text_input(t("campaigns.name"), value="batch", key="campaign_name")
skip_invalid = st.checkbox(t("campaigns.skip_invalid"), key="campaign_skip")


def _rows() -> tuple[list[dict] | None, tuple[str, bytes] | None]:
    """The rows to send: the uploaded file, else the table's non-empty rows."""
    if upload is not None:
        return None, (upload.name, upload.getvalue())
    rows = []
    for record in table.to_dict(orient="records"):
        row = {k: v for k, v in record.items() if isinstance(v, str) and v.strip()}
        row |= {k: v for k, v in record.items() if not isinstance(v, str) and pd.notna(v)}
        if row:
            rows.append(row)
    return rows, None


def _defaults() -> dict | None:
    try:
        data = json.loads(defaults_text or "{}")
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        st.error(t("campaigns.defaults_bad", error=exc))
        return None
    return data


def _problems(check: BatchCheck) -> None:
    st.caption(t("campaigns.valid", valid=check.valid, rows=check.rows))
    for p in check.problems:
        field = f"{p.field}: " if p.field else ""
        st.error(t("campaigns.problem", row=p.row, field=field, message=p.message))


if creator:
    check_col, start_col = st.columns(2)
    check_clicked = check_col.button(t("campaigns.check"), key="campaign_check")
    start_clicked = start_col.button(t("campaigns.start"), key="campaign_start", type="primary")
    if check_clicked or start_clicked:
        rows, file = _rows()
        defaults = _defaults()
        if defaults is not None and not rows and file is None:
            st.error(t("campaigns.no_rows"))
        elif defaults is not None:
            try:
                check = facade().check_batch(rows, file, defaults)
                _problems(check)
                if start_clicked and (not check.problems or skip_invalid):
                    made = facade().create_batch(rows, file, defaults, name, skip_invalid)
                    st.session_state["campaign_batch"] = str(made.batch_id)
                    st.success(
                        t("campaigns.started", batch_id=made.batch_id, items=len(made.items))
                    )
            except FacadeError as exc:
                error(exc)


def follow() -> None:
    batch_id = st.session_state.get("campaign_batch")
    if not batch_id:
        return
    try:
        batch = facade().batch(batch_id)
    except FacadeError as exc:
        error(exc)
        return
    st.subheader(t("campaigns.progress"))
    done = sum(n for s, n in batch.counts.items() if s in SETTLED | {"invalid"})
    st.progress(done / max(1, batch.total), text=f"{done} / {batch.total}")
    frame = pd.DataFrame(
        [
            {
                "row": i.row,
                "topic": i.topic,
                "state": i.state,
                "progress": i.progress or 0,
                "error": i.error or "",
            }
            for i in batch.items
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch")
    report = io.StringIO()
    writer = csv.DictWriter(report, fieldnames=["row", "topic", "state", "task_id", "error"])
    writer.writeheader()
    for i in batch.items:
        writer.writerow(i.model_dump(mode="json", include=set(writer.fieldnames)))
    st.download_button(
        t("campaigns.report"),
        report.getvalue(),
        file_name="report.csv",
        mime="text/csv",
        key="campaign_report",
    )
    finished = done >= batch.total
    if st.session_state.get("campaign_polling") and finished:
        st.session_state["campaign_polling"] = False
        st.rerun()
    st.session_state["campaign_finished"] = finished


running = bool(st.session_state.get("campaign_batch")) and not st.session_state.get(
    "campaign_finished", False
)
st.session_state["campaign_polling"] = running
st.fragment(run_every=1.0 if running else None)(follow)()

st.divider()
st.subheader(t("campaigns.scheduled"))
if creator:
    with st.expander(t("campaigns.schedule_title")):
        cron = st.text_input(t("campaigns.cron"), value="0 9 * * 1", key="campaign_cron")
        timezone = st.text_input(t("campaigns.timezone"), value="UTC", key="campaign_tz")
        if st.button(t("campaigns.schedule"), key="campaign_schedule"):
            rows, file = _rows()
            defaults = _defaults()
            if file is not None:
                st.error(t("campaigns.no_rows"))
            elif defaults is not None and rows:
                try:
                    facade().add_campaign(
                        {
                            "name": name,
                            "rows": rows,
                            "defaults": defaults,
                            "schedule": {"cron": cron, "timezone": timezone},
                            "skip_invalid": skip_invalid,
                        }
                    )
                    st.success(t("campaigns.scheduled_ok", name=name))
                except FacadeError as exc:
                    error(exc)
try:
    campaigns = facade().campaigns()
except FacadeError as exc:
    error(exc)
    campaigns = []
if not campaigns:
    st.caption(t("campaigns.none"))
for c in campaigns:
    with st.container(border=True):
        when = c.schedule.get("cron") or c.schedule.get("interval_s") or c.schedule.get("rrule")
        st.markdown(
            f"**{c.name}** — {when} ({c.schedule.get('timezone', 'UTC')}), "
            f"{c.rows} rows, {'active' if c.active else 'paused'}"
        )
        if creator:
            a, b = st.columns(2)
            toggle = t("campaigns.pause") if c.active else t("campaigns.resume")
            try:
                if a.button(toggle, key=f"toggle-{c.name}"):
                    facade().set_campaign(c.name, not c.active)
                    st.rerun()
                if b.button(t("campaigns.delete"), key=f"delete-{c.name}"):
                    facade().remove_campaign(c.name)
                    st.rerun()
            except FacadeError as exc:
                error(exc)
