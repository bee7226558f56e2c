import { useEffect, useRef, useState } from "react";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { api } from "../api";
import type { MeetingQuality, ParticipantQuality, QualitySummary } from "../generated/protocol";

/// The administrators' call-quality pages: the meetings with samples, and
/// for the one chosen, each participant's bitrate, loss, round trip and
/// freezes over time (what the app reported, and the SFU's estimate).
export function CallQuality(props: { org: string }) {
  const [meetings, setMeetings] = useState<QualitySummary[]>([]);
  const [chosen, setChosen] = useState<MeetingQuality | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.qualitySummaries(props.org).then((r) => setMeetings(r.meetings), (e) => setError(e.message));
  }, [props.org]);
  const open = (meeting: string) => api.meetingQuality(props.org, meeting).then(setChosen, (e) => setError(e.message));
  return (
    <section aria-label="Call quality">
      <h2>Call quality</h2>
      {error ? <p role="status">{error}</p> : null}
      {meetings.length === 0 ? <p>No meeting has reported its call quality yet.</p> : null}
      <table className="quality-meetings">
        <thead>
          <tr>
            <th scope="col">Meeting</th>
            <th scope="col">When</th>
            <th scope="col">People</th>
            <th scope="col">Poor samples</th>
          </tr>
        </thead>
        <tbody>
          {meetings.map((m) => (
            <tr key={m.meeting_id}>
              <th scope="row">
                <button className="link" onClick={() => void open(m.meeting_id)}>
                  {m.title}
                </button>
              </th>
              <td>
                {new Date(m.first_ms).toLocaleString()} – {new Date(m.last_ms).toLocaleTimeString()}
              </td>
              <td>{m.participants}</td>
              <td>
                {m.poor_samples} of {m.samples}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {chosen ? (
        <div className="quality-detail">
          <h3>{chosen.title}</h3>
          {chosen.participants.map((p) => (
            <ParticipantGraphs key={p.participant_id} participant={p} />
          ))}
        </div>
      ) : null}
    </section>
  );
}

const SERIES_COLOURS = ["#3b7dd8", "#2e9e5b", "#d8a31a", "#d64541"];

/// One participant's figures over the meeting, in three small charts.
function ParticipantGraphs(props: { participant: ParticipantQuality }) {
  const p = props.participant;
  const times = p.samples.map((s) => s.at_ms / 1000);
  const poor = p.samples.filter((s) => s.level === "poor").length;
  return (
    <figure className="quality-graphs" aria-label={`Call quality of ${p.display_name}`}>
      <figcaption>
        {p.display_name} · {p.samples.length} samples{poor > 0 ? ` · ${poor} poor` : ""}
      </figcaption>
      <Chart
        title="Bitrate (kbit/s)"
        times={times}
        series={[
          { label: "received", values: p.samples.map((s) => s.report.received_kbps) },
          { label: "sent", values: p.samples.map((s) => s.report.sent_kbps) },
          { label: "SFU estimate", values: p.samples.map((s) => s.sfu?.estimate_kbps ?? null) },
        ]}
      />
      <Chart
        title="Loss (%) and round trip (ms)"
        times={times}
        series={[
          { label: "loss %", values: p.samples.map((s) => s.report.loss_permille / 10) },
          { label: "round trip ms", values: p.samples.map((s) => s.report.rtt_ms ?? null) },
          { label: "jitter ms", values: p.samples.map((s) => s.report.jitter_ms ?? null) },
        ]}
      />
      <Chart
        title="Frozen video (ms per period)"
        times={times}
        series={[{ label: "frozen ms", values: p.samples.map((s) => s.report.frozen_ms) }]}
      />
    </figure>
  );
}

/// A uPlot line chart over the samples' times.
function Chart(props: { title: string; times: number[]; series: { label: string; values: (number | null)[] }[] }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!host.current) return undefined;
    const options: uPlot.Options = {
      title: props.title,
      width: Math.min(720, host.current.clientWidth || 720),
      height: 180,
      series: [{}, ...props.series.map((s, i) => ({ label: s.label, stroke: SERIES_COLOURS[i % SERIES_COLOURS.length], width: 2 }))],
      axes: [{ stroke: "#c8ccd4" }, { stroke: "#c8ccd4" }],
    };
    const data: uPlot.AlignedData = [props.times, ...props.series.map((s) => s.values)];
    const chart = new uPlot(options, data, host.current);
    return () => chart.destroy();
  }, [props.title, props.times, props.series]);
  return <div className="chart" ref={host} role="img" aria-label={props.title} />;
}
