export interface AuditExportVerdict {
  ok: boolean;
  records: number;
  checkpoints: number;
  problem: { line: number; why: string } | null;
}
export declare function verifyAuditExport(text: string, options?: { trustedKeys?: object[] }): AuditExportVerdict;
