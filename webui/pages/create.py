"""Create: every VideoSpec option, grouped as the spec groups them; then the run, followed to
the end: its stages, the player, downloads, and the social text."""

from __future__ import annotations

import json
import time
import uuid

import pandas as pd
import streamlit as st

from api.client import FacadeError
from spec.runs import ENDED, SETTLED
from webui.form import field_label, group, group_label, groups, load_into_session
from webui.i18n import t
from webui.ui import absolute, config, error, facade, require_signin, role, show_run, stage_lines

require_signin()
st.title(t("create.title"))
try:
    cfg = config()
    voices = [v.id for v in facade().voices() if v.offline]
except FacadeError as exc:
    error(exc)
    st.stop()
schema, limits = cfg.spec_schema, cfg.limits
props = schema["properties"]

# "Make again" (Runs page) and presets put a spec here to fill the form with.
if "prefill" in st.session_state:
    load_into_session(st.session_state.pop("prefill"), schema)

if not cfg.llm_configured:
    st.caption(t("create.no_llm"))
topic = st.text_input(t("create.topic"), key="f.topic", max_chars=int(limits["max_topic_chars"]))
script = st.text_area(t("create.script"), key="f.script", height=180)
language = st.text_input(
    field_label("language", props["language"]), key="f.language", placeholder="auto"
)
with st.expander(field_label("scenes", props["scenes"])):
    st.caption(props["scenes"].get("description", ""))
    scene_rows = st.data_editor(
        pd.DataFrame({"text": [""], "terms": [""], "duration": [None]}, dtype=object),
        num_rows="dynamic",
        key="f.scenes_table",
        width="stretch",
    )


def _cell(value: object) -> str:
    return "" if value is None or pd.isna(value) else str(value).strip()  # type: ignore[arg-type]


scenes = [
    {"text": _cell(row.get("text"))}
    | {"terms": [w.strip() for w in _cell(row.get("terms")).split(",") if w.strip()][:3]}
    # The facade checks the duration (one line if it is not a number in bounds).
    | ({"duration": _cell(row.get("duration"))} if _cell(row.get("duration")) else {})
    for row in scene_rows.to_dict(orient="records")
    if _cell(row.get("text"))
]

uploads: dict[str, str] = st.session_state.setdefault("uploads", {})


def uploaded(files: list, what: str, folder: str | None = None) -> list[str]:
    """Send each new file to the facade once; the paths it answered, or its one-line error."""
    paths = []
    for file in files:
        ident = f"{what}:{file.file_id}"
        if ident not in uploads:
            if file.size > limits["max_upload_mb"] * 2**20:
                st.error(
                    t(
                        "error.prefix",
                        message=f"{file.name} is larger than {limits['max_upload_mb']:g} MB",
                    )
                )
                continue
            try:
                answer = facade().upload(file.name, file.getvalue(), folder)
            except FacadeError as exc:
                error(exc)
                continue
            uploads[ident] = answer.path
            st.caption(t("create.uploaded", name=file.name))
        paths.append(uploads[ident])
    return paths


spec: dict = {}
for name, fields in groups(schema):
    with st.expander(group_label(name), expanded=name == "frame"):
        spec |= group(schema, fields, voices)
        if name == "footage":
            folder = st.session_state.setdefault(
                "footage_folder", f"footage-{uuid.uuid4().hex[:8]}"
            )
            files = st.file_uploader(
                t("create.upload_footage"), accept_multiple_files=True, key="up_footage"
            )
            if files and uploaded(files, "footage", folder):
                spec["materials_dir"] = uploads[f"footage:{files[0].file_id}"].rsplit("/", 1)[0]
        if name == "voice":
            narration = st.file_uploader(t("create.upload_narration"), key="up_narration")
            if narration and (paths := uploaded([narration], "narration")):
                spec["audio"] = paths[0]
            if st.button(t("create.preview_voice"), key="voice_preview"):
                try:
                    sample = {"script": t("create.preview_text"), "voice": spec.get("voice")}
                    made = facade().create("audio", sample)
                    st.session_state["preview_task"] = str(made.task_id)
                except FacadeError as exc:
                    error(exc)
            preview = st.session_state.get("preview_task")
            if preview:
                for _ in range(30):  # a short sample: seconds, asked once a second at most
                    sample_run = facade().run(preview)
                    if sample_run.state in ENDED:
                        break
                    time.sleep(1)
                if sample_run.signed_urls.get("audio"):
                    st.audio(absolute(sample_run.signed_urls["audio"]))
                elif sample_run.state in ENDED:
                    st.error(t("create.failed", error=sample_run.error or sample_run.state))
        if name == "music":
            music = st.file_uploader(t("create.upload_music"), key="up_music")
            choice = st.selectbox(
                field_label("music", props["music"]), ["none", "random"], key="f.music_choice"
            )
            spec["music"] = choice
            if music and (paths := uploaded([music], "music")):
                spec["music"] = paths[0]

if scenes:
    spec["scenes"] = scenes
if topic.strip():
    spec["topic"] = topic.strip()
if script.strip():
    spec["script"] = script
if language and language.strip():
    spec["language"] = language.strip()

with st.expander(t("create.presets")):
    st.download_button(
        t("create.preset_save"),
        json.dumps(spec, ensure_ascii=False, indent=2),
        file_name="preset.json",
        mime="application/json",
        key="preset_save",
    )
    preset = st.file_uploader(t("create.preset_load"), type=["json"], key="preset_load")
    if preset is not None and st.session_state.get("preset_loaded") != preset.file_id:
        try:
            data = json.loads(preset.getvalue())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            st.error(t("create.preset_bad", error=exc))
        else:
            st.session_state["preset_loaded"] = preset.file_id
            st.session_state["prefill"] = data
            st.rerun()

if role() == "viewer":
    st.info(t("create.viewer"))
elif st.button(t("create.generate"), key="generate", type="primary"):
    if not any(spec.get(k) for k in ("topic", "script", "audio", "scenes")):
        st.error(t("create.need_text"))
    elif len(spec.get("script", "")) > limits["max_script_chars"]:
        st.error(
            t(
                "create.script_too_long",
                n=len(spec["script"]),
                limit=int(limits["max_script_chars"]),
            )
        )
    else:
        try:
            created = facade().create("video", spec)
        except FacadeError as exc:
            error(exc)
        else:
            st.session_state["current_task"] = str(created.task_id)
            st.session_state["current_seen"] = {}
            st.success(t("create.started", run_id=created.task_id))


def follow() -> None:
    """The run as it goes: one request a second, and none once it has ended."""
    run_id = st.session_state.get("current_task")
    if not run_id:
        return
    last = st.session_state.get("current_last")
    fresh = time.monotonic() - st.session_state.get("current_asked", 0.0) < 0.95
    if last and str(last.task_id) == run_id and (last.state in ENDED or fresh):
        run = last  # ended, or asked under a second ago (a rerun of the page between ticks)
    else:
        st.session_state["current_asked"] = time.monotonic()
        try:
            run = facade().run(run_id)
        except FacadeError as exc:
            error(exc)
            return
        st.session_state["current_last"] = run
    seen = st.session_state.setdefault("current_seen", {})
    if run.stage and run.stage not in seen:
        seen[run.stage] = time.monotonic()
    if run.state in ENDED and "end" not in seen:
        seen["end"] = time.monotonic()
    state = {"completed": "complete", "failed": "error", "cancelled": "error"}.get(
        run.state, "running"
    )
    with st.status(t("create.following"), state=state, expanded=True):
        st.progress(min(1.0, run.progress / 100), text=f"{run.progress:.0f}%")
        st.markdown("\n\n".join(stage_lines(run, seen)))
    if run.state == "completed":
        st.success(t("create.done", seconds=run.duration_s or 0))
        show_run(run, f"current-{run_id}")
    elif run.state == "awaiting_review":
        st.info(t("create.awaiting_review"))
        show_run(run, f"current-{run_id}")
    elif run.state in ENDED:
        st.error(t("create.failed", error=run.error or run.state))
    if run.state in SETTLED and st.session_state.get("polling"):
        st.session_state["polling"] = False
        st.rerun()  # the whole page again: the fragment stops ticking


# Ticks once a second while the run goes; without ticks (and requests) once it has settled.
last = st.session_state.get("current_last")
running = bool(st.session_state.get("current_task")) and (last is None or last.state not in SETTLED)
st.session_state["polling"] = running
st.fragment(run_every=1.0 if running else None)(follow)()
