export interface DemoTool {
  url: string;
  calls: { input: unknown; traceparent: string | null }[];
  close(): Promise<void>;
}
export declare function startDemoTool(options: { port: number; host?: string }): Promise<DemoTool>;
