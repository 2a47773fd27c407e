/** Small shared pieces: links, error and empty states, copyable values, tables, forms. */
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.ts';
import { BASE, navigate } from './router.ts';

export function Link(props: { to: string; class?: string; children: ComponentChildren; current?: boolean }) {
  const onClick = (event: MouseEvent) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(props.to);
  };
  return (
    <a
      href={`${BASE}${props.to === '/' ? '' : props.to}`}
      class={props.class}
      onClick={onClick}
      aria-current={props.current ? 'page' : undefined}
    >
      {props.children}
    </a>
  );
}

/** A problem document as a person reads it: its title, its detail, and the fields it names. */
export function ErrorNotice(props: { error: unknown; onDismiss?: () => void }) {
  const error = props.error;
  if (error === null || error === undefined) return null;
  const problem =
    error instanceof ApiError
      ? error
      : new ApiError(0, { title: 'Something went wrong', detail: String((error as Error).message ?? error) });
  const forbidden = problem.status === 403 && problem.code !== 'CSRF_REJECTED';
  return (
    <div class="notice notice-error" role="alert">
      <p class="notice-title">{forbidden ? 'Your role does not allow this' : problem.title}</p>
      {problem.detail !== '' && <p>{problem.detail}</p>}
      {forbidden && <p>Ask an administrator of this Neuron to do it, or to give you the admin role.</p>}
      {problem.fieldErrors.length > 0 && (
        <ul>
          {problem.fieldErrors.map((field) => (
            <li key={field.path}>
              <code>{field.path}</code>: {field.message}
            </li>
          ))}
        </ul>
      )}
      {props.onDismiss && (
        <button type="button" class="button button-quiet" onClick={props.onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}

export function SuccessNotice(props: { children: ComponentChildren }) {
  return (
    <div class="notice notice-success" role="status">
      {props.children}
    </div>
  );
}

export function EmptyState(props: { title: string; children: ComponentChildren }) {
  return (
    <div class="empty">
      <p class="empty-title">{props.title}</p>
      <p>{props.children}</p>
    </div>
  );
}

export function Loading() {
  return (
    <p class="loading" role="status">
      Loading…
    </p>
  );
}

export function PageHeader(props: { title: string; children?: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);
  // Focus moves to the new page's heading, so keyboard and screen reader users know where they are.
  useEffect(() => heading.current?.focus(), [props.title]);
  return (
    <header class="page-header">
      <h1 tabIndex={-1} ref={heading}>
        {props.title}
      </h1>
      {props.children && <div class="page-intro">{props.children}</div>}
    </header>
  );
}

/** A value shown in full with a button that copies it to the clipboard. */
export function Copyable(props: { label: string; value: string; multiline?: boolean; testId?: string }) {
  const [copied, setCopied] = useState<'no' | 'yes' | 'failed'>('no');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.value);
      setCopied('yes');
    } catch {
      setCopied('failed');
    }
  };
  return (
    <div class="copyable">
      <span class="copyable-label">{props.label}</span>
      <div class="copyable-row">
        {props.multiline ? (
          // biome-ignore lint/a11y/noNoninteractiveTabindex: a long value scrolls inside its box; keyboard users must be able to focus it to scroll (WCAG 2.1.1)
          <pre class="copyable-value" data-testid={props.testId} tabIndex={0}>
            {props.value}
          </pre>
        ) : (
          // biome-ignore lint/a11y/noNoninteractiveTabindex: a long value scrolls inside its box; keyboard users must be able to focus it to scroll (WCAG 2.1.1)
          <code class="copyable-value" data-testid={props.testId} tabIndex={0}>
            {props.value}
          </code>
        )}
        <button type="button" class="button button-small" onClick={copy} aria-label={`Copy ${props.label}`}>
          Copy
        </button>
      </div>
      <span class="copyable-status" role="status">
        {copied === 'yes' ? 'Copied to the clipboard.' : copied === 'failed' ? 'Could not copy: select the text and copy it yourself.' : ''}
      </span>
    </div>
  );
}

/** A table that may scroll sideways on a narrow screen: a named region keyboard users can focus to scroll it. */
export function ScrollableTable(props: { label: string; children: ComponentChildren }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: the region scrolls sideways on a narrow screen; keyboard users must be able to focus it to scroll (WCAG 2.1.1)
    <section class="table-wrap" tabIndex={0} aria-label={props.label}>
      {props.children}
    </section>
  );
}

export function Status(props: { value: string }) {
  return <span class={`badge badge-${props.value.replace(/[^a-z-]/g, '')}`}>{props.value}</span>;
}

export function When(props: { at: string | null | undefined; empty?: string }) {
  if (props.at === null || props.at === undefined) return <span class="muted">{props.empty ?? 'never'}</span>;
  const date = new Date(props.at);
  return (
    <time dateTime={props.at} title={props.at}>
      {date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })}
    </time>
  );
}

export function Field(props: { label: string; hint?: string; children: JSX.Element }) {
  return (
    // biome-ignore lint/a11y/noLabelWithoutControl: the control is `children`, nested inside the label (implicit association), which the rule cannot see through a prop
    <label class="field">
      <span class="field-label">{props.label}</span>
      {props.children}
      {props.hint && <span class="field-hint">{props.hint}</span>}
    </label>
  );
}

/**
 * An action that needs a reason (suspend, terminate, block): the button opens a small form, the
 * reason is required, and the action runs only when the form is submitted. Cancel or Escape
 * closes the form and puts keyboard focus back on the button that opened it.
 */
export function ReasonAction(props: { label: string; danger?: boolean; onSubmit: (reason: string) => Promise<void> }) {
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const input = useRef<HTMLInputElement>(null);
  const opener = useRef<HTMLButtonElement>(null);
  // Set by cancel: the button exists again only after the render that closes the form.
  const refocusOpener = useRef(false);
  useEffect(() => {
    if (open) input.current?.focus();
    else if (refocusOpener.current) {
      refocusOpener.current = false;
      opener.current?.focus();
    }
  }, [open]);
  if (!open)
    return (
      <button type="button" ref={opener} class={`button button-small${props.danger ? ' button-danger' : ''}`} onClick={() => setOpen(true)}>
        {props.label}
      </button>
    );
  const cancel = () => {
    refocusOpener.current = true;
    setOpen(false);
  };
  const cancelOnEscape = (event: KeyboardEvent) => {
    if (event.key !== 'Escape') return;
    event.preventDefault();
    cancel();
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await props.onSubmit(reason.trim());
      setOpen(false);
      setReason('');
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="reason-form" onSubmit={submit} onKeyDown={cancelOnEscape}>
      <Field label={`Reason to ${props.label.toLowerCase()}`} hint="Kept in the audit log. No clinical details.">
        <input ref={input} required maxLength={500} value={reason} onInput={(event) => setReason(event.currentTarget.value)} />
      </Field>
      <div class="actions">
        <button
          type="submit"
          class={`button button-small${props.danger ? ' button-danger' : ' button-primary'}`}
          disabled={busy || reason.trim() === ''}
        >
          {props.label}
        </button>
        <button type="button" class="button button-small button-quiet" onClick={cancel}>
          Cancel
        </button>
      </div>
      <ErrorNotice error={error} />
    </form>
  );
}

/** Loads a page of data; `reload` runs it again. */
export function useLoad<T>(
  load: () => Promise<T>,
  deps: unknown[],
): { data: T | null; error: unknown; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data: T | null; error: unknown; loading: boolean }>({ data: null, error: null, loading: true });
  const [round, setRound] = useState(0);
  useEffect(() => {
    let live = true;
    setState((previous) => ({ ...previous, loading: true }));
    load().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error: unknown) => live && setState({ data: null, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, round]);
  return { ...state, reload: () => setRound((value) => value + 1) };
}
