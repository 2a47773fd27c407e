/**
 * Stress phase 2: thousands of idle connections, some that never send and some that stop after
 * the challenge, against a Neuron with a raised ceiling and short deadlines, while legitimate
 * patients keep handshaking. Measures whether each idle connection is closed at its deadline,
 * the legitimate handshakes' latency meanwhile, and the Neuron's memory before, during and after.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { createConsentToken } from 'neuron-careagent-client';
import { PROVIDER_NPI, RssSampler, handshake, newPatient, percentile, say, startServer, type Memory, type Patient } from './common.ts';

export interface IdlePhaseResult {
  /** Per wave. */
  silent: number;
  stoppers: number;
  waves: number;
  deadlineMs: number;
  /** Closed with AUTH_TIMEOUT (close 4001) no earlier than the deadline and within a second after it. */
  closedAtDeadline: number;
  early: number;
  late: number;
  wrongAnswer: number;
  /** How long after its deadline the idle connections were closed (client view). */
  overshootP50: number;
  overshootP99: number;
  legitCompleted: number;
  legitFailed: number;
  legitP50: number;
  legitP99: number;
  memory: Memory;
  /** The peak RSS of each wave (the same wave repeated). */
  wavePeaksKb: number[];
  waveSeconds: number[];
  problems: string[];
}

interface Idle {
  startedAt: number;
  openedAt: number;
  challengedAt: number | null;
  closedAt: number;
  codes: string[];
  closeCode: number;
}

/** One idle client; `patient` makes it answer the auth step and then stop. */
function idle(url: string, patient: Patient | null): Promise<Idle> {
  return new Promise((resolve) => {
    const startedAt = performance.now();
    const ws = new WebSocket(url, { perMessageDeflate: false });
    const result: Idle = { startedAt, openedAt: NaN, challengedAt: null, closedAt: NaN, codes: [], closeCode: 0 };
    ws.on('open', () => {
      result.openedAt = performance.now();
      if (patient) {
        const token = createConsentToken(
          { patientAgentId: patient.agentId, providerNpi: PROVIDER_NPI, consentedActions: ['office_visit'] },
          patient.keys,
        );
        ws.send(
          JSON.stringify({
            type: 'handshake.auth',
            patient_agent_id: patient.agentId,
            patient_public_key: patient.keys.publicKeyB64,
            patient_endpoint: `wss://${patient.agentId}.example/agent`,
            consent_token_payload: token.payload,
            consent_token_signature: token.signature,
          }),
        );
      }
    });
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { type: string; code?: string };
      if (frame.type === 'handshake.challenge') result.challengedAt = performance.now();
      if (frame.type === 'handshake.error') result.codes.push(String(frame.code));
    });
    ws.on('error', () => undefined);
    ws.on('close', (code) => {
      result.closedAt = performance.now();
      result.closeCode = code;
      resolve(result);
    });
  });
}

export async function idlePhase(options: {
  silent: number;
  stoppers: number;
  waves: number;
  deadlineMs: number;
  ceiling: number;
  config?: Record<string, unknown>;
}): Promise<IdlePhaseResult> {
  const server = await startServer(
    {
      ...options.config,
      handshake: {
        max_concurrent_handshakes: options.ceiling,
        auth_timeout_ms: options.deadlineMs,
        challenge_timeout_ms: options.deadlineMs,
      },
    },
    { inspect: true },
  );
  const problems: string[] = [];
  try {
    const url = server.neuron.handshakeUrl;
    const sampler = new RssSampler(server.neuron.pid);
    // Warm up (JIT, database pages) so the baseline is a serving Neuron's, not a cold one's.
    for (let i = 0; i < 5; i++) await Promise.all(Array.from({ length: 10 }, () => handshake(url, newPatient('idle-warm'))));
    await sleep(500);
    const before = await server.collectGarbage();
    sampler.start();

    // Two identical waves, then a full collection: the heap in use should be back near where it
    // started (V8 keeps the memory it grew until it needs it, so RSS alone says little).
    const results: Array<Idle & { kind: 'silent' | 'stopper' }> = [];
    const waveSeconds: number[] = [];
    const wavePeaksKb: number[] = [];
    const latencies: number[] = [];
    let legitFailed = 0;
    for (let wave = 1; wave <= options.waves; wave++) {
      sampler.peakKb = sampler.now();
      const stopperPatients = Array.from({ length: options.stoppers }, () => newPatient('stopper'));
      say(
        `idle wave ${wave}: ${options.silent} silent + ${options.stoppers} stop after the challenge, deadline ${options.deadlineMs} ms, ceiling ${options.ceiling}`,
      );
      const waveBegan = performance.now();
      const idles: Array<Promise<Idle & { kind: 'silent' | 'stopper' }>> = [];
      // Opened in bursts, as fast as the listen backlog takes them.
      const plan: Array<Patient | null> = [...Array.from({ length: options.silent }, () => null), ...stopperPatients];
      for (let i = 0; i < plan.length; i += 250) {
        for (const patient of plan.slice(i, i + 250))
          idles.push(idle(url, patient).then((r) => ({ ...r, kind: patient ? ('stopper' as const) : ('silent' as const) })));
        await sleep(20);
      }

      // Legitimate patients meanwhile, four at a time, until every idle connection is closed.
      let idleDone = false;
      const allIdle = Promise.all(idles).then((r) => {
        idleDone = true;
        return r;
      });
      const legit = async (): Promise<void> => {
        while (!idleDone) {
          const began = performance.now();
          try {
            await handshake(url, newPatient('idle-legit'), 30_000);
            latencies.push(performance.now() - began);
          } catch (error) {
            legitFailed += 1;
            problems.push(`a legitimate handshake failed during the idle phase: ${(error as Error).message}`);
          }
        }
      };
      const [wave_] = await Promise.all([allIdle, ...Array.from({ length: 4 }, legit)]);
      results.push(...wave_);
      waveSeconds.push((performance.now() - waveBegan) / 1000);
      sampler.now();
      wavePeaksKb.push(sampler.peakKb);
      await sleep(1_000);
    }
    sampler.stop();

    let closedAtDeadline = 0;
    let early = 0;
    let late = 0;
    let wrongAnswer = 0;
    const overshoot: number[] = [];
    for (const r of results) {
      if (
        r.codes.length !== 1 ||
        r.codes[0] !== 'AUTH_TIMEOUT' ||
        r.closeCode !== 4001 ||
        (r.kind === 'stopper' && r.challengedAt === null)
      ) {
        wrongAnswer += 1;
        continue;
      }
      // The deadline starts at admission (silent) or when the challenge is sent (stopper); the
      // client sees those moments a little later, so "early" is measured from what the client did
      // before them: its upgrade request, or its handshake.auth (sent on open).
      const startedDeadline = r.kind === 'silent' ? r.startedAt : r.openedAt;
      const sinceSeen = r.closedAt - (r.kind === 'silent' ? r.openedAt : r.challengedAt!);
      if (r.closedAt - startedDeadline < options.deadlineMs - 5) early += 1;
      else if (sinceSeen > options.deadlineMs + 1_000) late += 1;
      else closedAtDeadline += 1;
      overshoot.push(sinceSeen - options.deadlineMs);
    }
    if (wrongAnswer > 0) problems.push(`${wrongAnswer} idle connections were not answered AUTH_TIMEOUT + 4001`);
    if (early > 0) problems.push(`${early} idle connections closed before their deadline`);

    // Memory after: what the Neuron still holds once V8 has collected.
    await sleep(1_000);
    const after = await server.collectGarbage();
    return {
      silent: options.silent,
      stoppers: options.stoppers,
      waves: options.waves,
      deadlineMs: options.deadlineMs,
      closedAtDeadline,
      early,
      late,
      wrongAnswer,
      overshootP50: percentile(overshoot, 50),
      overshootP99: percentile(overshoot, 99),
      legitCompleted: latencies.length,
      legitFailed,
      legitP50: percentile(latencies, 50),
      legitP99: percentile(latencies, 99),
      memory: {
        rssKb: { baseline: before.rssKb, peak: Math.max(...wavePeaksKb), after: after.rssKb },
        heapKb: { baseline: before.heapUsedKb, after: after.heapUsedKb },
      },
      wavePeaksKb,
      waveSeconds,
      problems,
    };
  } finally {
    await server.stop();
  }
}
