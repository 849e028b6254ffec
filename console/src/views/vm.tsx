export function VmPage({ name }: { name: string }) { return <h1>VM {name}</h1>; }
