/**
 * Shared by the benchmarks: waits for a Neuron started as `neuron start` to print its handshake
 * URL, then keeps draining its output so a chatty server never blocks on a full pipe.
 */
import type { ChildProcess } from 'node:child_process';

export async function waitForHandshakeUrl(child: ChildProcess, timeoutMs: number): Promise<string> {
  let output = '';
  const handshakeUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the Neuron did not start:\n${output}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /handshake\s+(ws:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the Neuron exited with ${code}:\n${output}`));
    });
  });
  child.stdout!.resume();
  child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(`[neuron] ${chunk.toString()}`));
  return handshakeUrl;
}
