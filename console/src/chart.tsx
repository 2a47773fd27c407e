/**
 * Handshakes per day as an SVG bar chart drawn by hand (completed and failed side by side), with
 * the same numbers in a table for screen readers and anyone who wants exact values.
 */
export interface HandshakeDay {
  date: string;
  completed: number;
  failed: number;
}

const WIDTH = 700; // viewBox units; the SVG scales to its container
const HEIGHT = 220;
const AXIS = 28; // room under the bars for the date labels
const TOP = 20; // room above the tallest bar for the scale's label

export function HandshakeChart(props: { days: HandshakeDay[] }) {
  const days = props.days;
  const total = days.reduce((sum, day) => sum + day.completed + day.failed, 0);
  if (days.length === 0) return <p class="muted">No days to show.</p>;
  const max = Math.max(1, ...days.map((day) => Math.max(day.completed, day.failed)));
  const slot = WIDTH / days.length;
  const bar = Math.max(2, (slot - 8) / 2);
  const scale = (value: number) => ((HEIGHT - AXIS - TOP) * value) / max;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={`Handshakes per day: ${total} in ${days.length} days`}>
        <line x1="0" x2={WIDTH} y1={HEIGHT - AXIS} y2={HEIGHT - AXIS} class="chart-axis" />
        <line x1="0" x2={WIDTH} y1={TOP} y2={TOP} class="chart-grid" />
        <text x={WIDTH} y={TOP - 4} class="chart-label" text-anchor="end">
          {max} per day
        </text>
        {days.map((day, index) => {
          const x = index * slot + 4;
          const completed = scale(day.completed);
          const failed = scale(day.failed);
          return (
            <g key={day.date}>
              <rect x={x} y={HEIGHT - AXIS - completed} width={bar} height={completed} class="chart-completed" />
              <rect x={x + bar} y={HEIGHT - AXIS - failed} width={bar} height={failed} class="chart-failed" />
              {index % 2 === 0 && (
                <text x={x + bar} y={HEIGHT - 8} class="chart-label" text-anchor="middle">
                  {day.date.slice(5)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <figcaption class="chart-legend">
        <span>
          <span class="swatch chart-completed-swatch" aria-hidden="true" /> Completed
        </span>
        <span>
          <span class="swatch chart-failed-swatch" aria-hidden="true" /> Failed
        </span>
        {total === 0 && <span class="muted">No handshakes yet: patients appear here once their CareAgents connect.</span>}
      </figcaption>
      <details class="chart-table">
        <summary>Show the numbers</summary>
        <table>
          <thead>
            <tr>
              <th scope="col">Day</th>
              <th scope="col">Completed</th>
              <th scope="col">Failed</th>
            </tr>
          </thead>
          <tbody>
            {days.map((day) => (
              <tr key={day.date}>
                <td>{day.date}</td>
                <td>{day.completed}</td>
                <td>{day.failed}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
