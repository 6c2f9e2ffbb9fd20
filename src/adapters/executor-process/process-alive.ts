// Whether a process (another manager, a job's leftover) still exists: signal 0 checks
// without touching it; EPERM means it exists but belongs to another user.
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};
