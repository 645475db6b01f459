// Files being attached to the next message: uploaded as soon as they are picked,
// pasted or dropped, shown as chips, sent as their upload ids.

import { uploadFile, type UploadInfo } from './api';

export interface PendingFile {
  key: number;
  name: string;
  status: 'uploading' | 'ready' | 'failed';
  upload: UploadInfo | null;
  error: string | null;
}

export class PendingAttachments {
  items = $state<PendingFile[]>([]);
  private next = 0;

  /** Upload each file; a failure stays as a chip with the server's message. */
  add(files: Iterable<File>): void {
    for (const file of files) {
      const key = this.next++;
      const name = file.name || `pasted-${key}`;
      this.items.push({ key, name, status: 'uploading', upload: null, error: null });
      uploadFile(file, name).then(
        (upload) => this.update(key, { status: 'ready', upload, name: upload.name }),
        (error: unknown) => this.update(key, { status: 'failed', error: error instanceof Error ? error.message : String(error) }),
      );
    }
  }

  remove(key: number): void {
    this.items = this.items.filter((item) => item.key !== key);
  }

  clear(): void {
    this.items = [];
  }

  get uploading(): boolean {
    return this.items.some((item) => item.status === 'uploading');
  }

  /** The ids of the files that uploaded, in the order they were added. */
  get ids(): string[] {
    return this.items.filter((item) => item.upload).map((item) => item.upload!.id);
  }

  private update(key: number, change: Partial<PendingFile>): void {
    const index = this.items.findIndex((item) => item.key === key);
    if (index >= 0) this.items[index] = { ...this.items[index], ...change };
  }
}

/** The files a paste or drop carries (none for plain text). */
export function filesOf(data: DataTransfer | null): File[] {
  return data ? Array.from(data.files) : [];
}
