export function WhatIfView() { return <h1>What-if</h1>; }
